"""selfrag.evaluate on ASQA-style rows: ALCE's str-em and ROUGE-Lsum beside Self-RAG's match,
the references passed through selfrag.infer's predictions; other sets get no ASQA columns."""

from __future__ import annotations

import doctest

import pytest

from stages.selfrag import evaluate as evaluate_module
from stages.selfrag.evaluate import SelfragEvaluateConfig, evaluate
from stages.selfrag.infer import SelfragPredictions

ASQA = {"id": "a1", "dataset": "asqa", "question": "When was the tower built?",
        "answers": ["1889", "1887"], "gold": [], "ctxs": [], "selected": [], "selection": "None",
        "retrieved": True, "p_retrieve": None, "scores": [],
        "prediction": "Building started in 1887 [1]. It opened in 1889 [2].",
        "qa_pairs": [{"question": "start?", "short_answers": ["1887"]},
                     {"question": "opened?", "short_answers": ["1889", "May 1889"]},
                     {"question": "architect?", "short_answers": ["Sauvestre"]}],
        "annotations": [{"long_answer": "Construction started in 1887."},
                        {"long_answer": "It opened in 1889 after two years."}]}
POPQA = {**ASQA, "id": "p1", "dataset": "popqa", "answers": ["Paris"], "prediction": "Paris.",
         "qa_pairs": None, "annotations": None}     # selfrag.infer gives every row the columns


def test_doctests():
    assert doctest.testmod(evaluate_module).failed == 0


def test_asqa_rows_get_alce_str_em_and_rouge_lsum(model_env):
    art, ctx = model_env
    metrics, per_q = evaluate(art(SelfragPredictions, [POPQA, ASQA]), SelfragEvaluateConfig(),
                              ctx("evaluate"))
    rows = {r["id"]: r for r in per_q}
    # citations removed: "building started in 1887 it opened in 1889": 2 of the 3 pairs
    assert rows["a1"]["str_em"] == pytest.approx(2 / 3) and rows["a1"]["str_hit"] == 0.0
    # the output, cleaned: "building started in 1887. it opened in 1889." (2 sentences, 8 tokens)
    # best reference "it opened in 1889 after two years" (7 tokens): union LCS "it opened in 1889"
    # = 4 -> R 4/7, P 4/8, F = 2·(4/7)(1/2) / (4/7 + 1/2) = 8/15; the other, "construction
    # started in 1887" (4): "started in 1887" = 3 -> R 3/4, P 3/8, F = 0.5
    assert rows["a1"]["rouge_lsum"] == pytest.approx(8 / 15)
    assert rows["p1"]["str_em"] is None and rows["p1"]["rouge_lsum"] is None
    assert metrics["str_em"] == pytest.approx(2 / 3) and metrics["rouge_lsum"] == pytest.approx(8 / 15)
    assert metrics["by_dataset"]["asqa"]["str_em"] == pytest.approx(2 / 3)
    assert metrics["by_dataset"]["popqa"]["str_em"] is None
    assert metrics["display"]["str_em"] == "str-em"
    assert metrics["display"]["rouge_lsum"] == "ROUGE-Lsum"


def test_without_asqa_rows_there_are_no_asqa_columns(model_env):
    art, ctx = model_env
    popqa = {k: v for k, v in POPQA.items() if k not in ("qa_pairs", "annotations")}
    metrics, per_q = evaluate(art(SelfragPredictions, [popqa]), SelfragEvaluateConfig(),
                              ctx("evaluate"))
    assert "str_em" not in metrics and "str_em" not in metrics["display"]
    assert all("rouge_lsum" not in r for r in per_q)


def test_kilt_fever_golds_are_scored_as_true_and_false(model_env):
    """KILT's FEVER (``output: [{answer: "REFUTES"}]``) loads with the gold "REFUTES"; the
    prediction became "false" but the gold stayed, so every FEVER answer scored 0. The golds
    are mapped as the prediction is; NOT ENOUGH INFO stays as it is on both sides."""
    art, ctx = model_env
    rows = [{**POPQA, "id": i, "dataset": "fever-dev-kilt", "answers": [gold], "prediction": pred,
             "qa_pairs": None, "annotations": None}
            for i, gold, pred in (("f1", "REFUTES", "REFUTES"), ("f2", "SUPPORTS", "SUPPORTS"),
                                  ("f3", "SUPPORTS", "REFUTES"),
                                  ("f4", "NOT ENOUGH INFO", "NOT ENOUGH INFO"),
                                  ("f5", "true", "SUPPORTS"))]   # the seed's files: true/false
    metrics, per_q = evaluate(art(SelfragPredictions, rows), SelfragEvaluateConfig(),
                              ctx("evaluate"))
    assert [r["selfrag_match"] for r in per_q] == [1.0, 1.0, 0.0, 1.0, 1.0]
    # the shared EM compares the texts as written: "SUPPORTS" is not the gold "true" there
    assert [r["exact_match"] for r in per_q] == [1.0, 1.0, 0.0, 1.0, 0.0]
    assert metrics["selfrag_match"] == pytest.approx(0.8)


def test_the_shared_metrics_see_fever_labels_as_written(model_env):
    """The case-sensitive SUPPORTS -> true rewrite is the seed's, for selfrag_match only: the
    normalised shared metrics score "supports" against the gold SUPPORTS (and "Refutes" against
    REFUTES) as the common evaluate and rag_instruct.evaluate do, not against "true"."""
    from stages.lib.metrics.answer import METRICS

    art, ctx = model_env
    cases = (("SUPPORTS", "supports"), ("REFUTES", "Refutes"), ("SUPPORTS", "Supports."),
             ("REFUTES", "REFUTES"), ("SUPPORTS", "REFUTES"))
    rows = [{**POPQA, "id": f"f{i}", "dataset": "fever_dev", "answers": [gold], "prediction": pred,
             "qa_pairs": None, "annotations": None} for i, (gold, pred) in enumerate(cases)]
    names = ["exact_match", "token_f1", "match_gold_in_pred"]
    metrics, per_q = evaluate(art(SelfragPredictions, rows), SelfragEvaluateConfig(metrics=names),
                              ctx("evaluate"))
    assert [r["selfrag_match"] for r in per_q] == [0.0, 0.0, 0.0, 1.0, 0.0]   # the paper's
    for name in names:
        assert [r[name] for r in per_q] == [1.0, 1.0, 1.0, 1.0, 0.0], name
        assert [r[name] for r in per_q] == [float(METRICS[name](p, [g])) for g, p in cases]
    assert [r["prediction"] for r in per_q] == [p for _, p in cases]
    assert metrics["exact_match"] == pytest.approx(0.8)
    assert metrics["selfrag_match"] == pytest.approx(0.2)
