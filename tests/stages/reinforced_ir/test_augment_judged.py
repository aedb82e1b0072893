"""The evaluation's augmentation steps ask the generator only about the queries the evaluation
scores (those with a gold passage id). A BEIR folder's ``queries.jsonl`` holds every split
(SciFact: 1,109 queries, 300 judged in ``qrels/test.tsv``; NFCorpus: 3,237 and 323): before,
all were augmented, 300 tokens each, in each round, and ``evaluate`` then dropped the rest."""

from __future__ import annotations

from pathlib import Path

from orchestrator.artifacts import Ref
from stages.reinforced_ir.augment import AugmentConfig, augment
from stages.reinforced_ir.schemas import AugmentationPrompt
from stages.schemas import Model, Questions
from tests.stages.conftest import fake_endpoint

PROMPT = Path(__file__).resolve().parents[3] / "conf" / "prompts" / "reinforced_ir" / "augment.yaml"


def _rows():
    return [{"id": f"q{i}", "dataset": "scifact", "question": f"claim {i}", "answers": [],
             "gold": [f"d{i}"] if i % 3 == 0 else []} for i in range(9)]


def test_judged_only_augments_the_queries_the_evaluation_scores(model_env, monkeypatch, caplog):
    art, ctx = model_env
    calls = fake_endpoint(monkeypatch, lambda conversation, params: "an answer")
    prompt = AugmentationPrompt(Ref("file", AugmentationPrompt.type_name(), "h", [str(PROMPT)]))
    model = art(Model, "unused")
    with caplog.at_level("INFO"):
        out = augment(art(Questions, _rows()), prompt, AugmentConfig(n=1, judged_only=True),
                      ctx("augment_eval_1"), model=model)
    assert [r["id"] for r in out] == ["q0", "q3", "q6"]
    assert calls[0][0] == 3
    assert "6 of 9 queries have no gold passage id" in caplog.text
    # the default (training data: every synthesised query has its source passage) keeps all
    out = augment(art(Questions, _rows()), prompt, AugmentConfig(n=1), ctx("augment_1"),
                  model=model)
    assert len(out) == 9


def test_the_recipe_sets_judged_only_on_the_evaluation_augmentations():
    from orchestrator.recipe import compose
    from orchestrator.repeat import expand_repeats

    repo = Path(__file__).resolve().parents[3]
    cfg = compose(repo / "conf" / "reinforced_ir_demo.yaml", [])[0].config
    steps = expand_repeats(cfg)["steps"]
    assert [n for n, s in steps.items() if s.get("judged_only")] == \
        ["augment_eval_base", "augment_eval_1", "augment_eval_2"]
