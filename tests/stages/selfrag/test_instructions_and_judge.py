"""``selfrag.instructions`` keeps a row's other columns (an evaluation set's shipped ``ctxs``,
ASQA's references) and finds a set's task family by name as everywhere (``arc_challenge_*``,
PubHealth's ``health_claims_*``); ``selfrag.judge`` says which key to lower when its dev split
would leave the critic no training row."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.api import ConfigError
from orchestrator.artifacts import Ref
from stages.schemas import Questions, Retrieved
from stages.selfrag.build_instructions import InstructionsConfig, instructions
from stages.selfrag.judge import JudgeConfig, judge
from stages.selfrag.schemas import IsRelPrompt, RetrievalPrompt, SupportPrompt, UtilityPrompt

PROMPTS = Path(__file__).resolve().parents[3] / "conf" / "prompts" / "selfrag"


def _prompt(kind, name: str):
    return kind(Ref("file", kind.type_name(), "hash", [str(PROMPTS / f"{name}.yaml")]))


def test_shipped_passages_and_references_pass_through(env):
    table, written, ctx = env
    ctxs = [{"id": "7", "title": "Kelmaro", "text": "Kelmaro was founded in 1852.", "score": None}]
    rows = [{"id": "popqa/0", "dataset": "popqa_longtail_w_gs", "question": "When?",
             "answers": ["1852"], "gold": [], "ctxs": ctxs},
            {"id": "h/0", "dataset": "health_claims_processed", "question": "Kelmaro is old.",
             "answers": ["true"], "gold": [], "ctxs": ctxs},
            {"id": "arc/0", "dataset": "arc_challenge_processed", "question": "Which?",
             "answers": ["A"], "gold": [], "ctxs": ctxs}]
    out = written(Questions, instructions(table(Retrieved, rows), InstructionsConfig(),
                                          ctx("eval_instructions")))
    assert [r["ctxs"][0]["id"] for r in out] == ["7", "7", "7"]
    assert out[0]["question"] == "When?"
    assert out[1]["question"].startswith("Is the following claim true or false")
    assert out[2]["question"].startswith("Choose the best answer")


def test_a_dev_split_that_takes_every_judgment_names_dev_size(env):
    table, _, ctx = env
    rows = [{"id": f"q{i}", "dataset": "nq", "question": f"Who founded town {i}?",
             "answers": ["Ardan"], "gold": ["1"],
             "ctxs": [{"id": "1", "title": "T", "text": "Ardan founded it.", "score": None}]}
            for i in range(3)]
    with pytest.raises(ConfigError, match="dev_size"):
        judge(table(Retrieved, rows), _prompt(RetrievalPrompt, "retrieval"),
              _prompt(IsRelPrompt, "relevance"), _prompt(SupportPrompt, "support"),
              _prompt(UtilityPrompt, "utility"), JudgeConfig(teacher="reference"), ctx("judge"))
