"""``evaluate`` scores the passages the generator read, in its order (``selected``): a
DynamicRAG row whose reranker picked the gold passage has R@1 1 where the retriever ranked it
third, and a run without retrieval gets no R@k (it was 0.000 in the results table; evaluation
audit of session 42, finding 7)."""

from __future__ import annotations

import pytest
from tests.stages.common.test_evaluate import prediction_row

from stages.common.evaluate import EvaluateConfig, evaluate
from stages.schemas import EvalMetrics, Predictions


def _metrics(env, rows, **cfg) -> dict:
    table, written, ctx = env
    out = evaluate(table(Predictions, rows), EvaluateConfig(**cfg), ctx("evaluate"))
    return written(EvalMetrics, out.metrics)


def test_the_rerankers_choice_is_scored_not_the_retrievers_order(env):
    rows = [prediction_row("1", "Paris", ["Paris"], gold=["d3"], ctx_ids=["d1", "d2", "d3"],
                           selected=[3]),
            prediction_row("2", "Rome", ["Rome"], gold=["e1"], ctx_ids=["e1", "e2", "e3"],
                           selected=[2, 1])]
    metrics = _metrics(env, rows, retrieval_k=[1, 3], answer_recall_k=[1])
    assert metrics["recall@1"] == pytest.approx(0.5)       # q1: d3 first; q2: e2 before e1
    assert metrics["recall@3"] == pytest.approx(1.0)
    assert metrics["mrr@3"] == pytest.approx((1 + 0.5) / 2)
    assert "answer_recall@1" in metrics


def test_a_run_without_retrieval_gets_no_passage_metrics(env):
    rows = [prediction_row("1", "Paris", ["Paris"], gold=["d3"]),
            prediction_row("2", "Rome", ["Rome"], gold=["e1"])]
    metrics = _metrics(env, rows, retrieval_k=[1, 3], answer_recall_k=[1])
    assert not [k for k in metrics if "recall" in k or "mrr" in k or "ndcg" in k], metrics
    assert metrics["exact_match"] == 1.0


def test_a_reranker_that_chose_nothing_scores_zero_in_both_recalls(env):
    """Review 43, item 10: when every question had passages but read none, R@k was 0 while
    answer recall was "not computed: no question has passages"."""
    rows = [prediction_row("1", "Paris", ["Paris"], gold=["d1"], ctx_ids=["d1"], selected=[])]
    metrics = _metrics(env, rows, retrieval_k=[1], answer_recall_k=[1])
    assert metrics["recall@1"] == 0.0 and metrics["answer_recall@1"] == 0.0
