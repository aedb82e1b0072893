"""Retrieval metrics through pytrec_eval, checked against hand-computed values."""

import doctest
import math

import pytest

from stages.lib.metrics import retrieval as retrieval_metrics
from stages.lib.metrics.retrieval import retrieval_scores, truncate_run


def test_doctests():
    assert doctest.testmod(retrieval_metrics).failed == 0


RUN = {
    "q1": {"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6},   # relevant: b, d
    "q2": {"x": 0.5, "y": 0.4},                       # relevant: z (not retrieved)
}
QRELS = {"q1": {"b": 1, "d": 1, "a": 0}, "q2": {"z": 1}}


def test_hand_computed_values():
    s = retrieval_scores(RUN, QRELS, ks=[1, 2, 4])
    q1 = s.per_query["q1"]
    assert q1["recall@1"] == 0.0 and q1["mrr@1"] == 0.0 and q1["ndcg@1"] == 0.0
    assert q1["recall@2"] == 0.5 and q1["mrr@2"] == 0.5
    # ndcg@2: DCG = 1/log2(3); IDCG = 1 + 1/log2(3)
    assert q1["ndcg@2"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert q1["recall@4"] == 1.0 and q1["mrr@4"] == 0.5
    # ndcg@4: DCG = 1/log2(3) + 1/log2(5)
    assert q1["ndcg@4"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5))
                                         / (1 + 1 / math.log2(3)))
    assert all(v == 0.0 for v in s.per_query["q2"].values())
    assert s.mean["recall@4"] == pytest.approx(0.5)
    assert s.mean["mrr@2"] == pytest.approx(0.25)
    assert list(s.mean) == ["recall@1", "ndcg@1", "mrr@1", "recall@2", "ndcg@2", "mrr@2",
                            "recall@4", "ndcg@4", "mrr@4"]


def test_query_missing_from_run_counts_as_zero_and_unjudged_queries_ignored():
    s = retrieval_scores({"q1": {"b": 1.0}, "q9": {"b": 1.0}},
                         {"q1": {"b": 1}, "q2": {"z": 1}, "q3": {"z": 0}}, ks=[5])
    assert set(s.per_query) == {"q1", "q2"}
    assert s.per_query["q1"]["mrr@5"] == 1.0 and s.per_query["q2"]["mrr@5"] == 0.0
    assert s.mean["recall@5"] == 0.5


def test_graded_relevance():
    # ranking a (rel 1), b (rel 2): DCG = 1 + 2/log2(3); IDCG = 2 + 1/log2(3)
    s = retrieval_scores({"q": {"a": 2.0, "b": 1.0}}, {"q": {"a": 1, "b": 2}}, ks=[2])
    assert s.per_query["q"]["ndcg@2"] == pytest.approx((1 + 2 / math.log2(3))
                                                      / (2 + 1 / math.log2(3)))


def test_truncate_ties_like_trec_eval():
    assert list(truncate_run({"q": {"a": 1.0, "c": 1.0, "b": 2.0}}, 2)["q"]) == ["b", "c"]


def test_no_judged_queries():
    s = retrieval_scores({"q": {"a": 1.0}}, {}, ks=[1])
    assert s.per_query == {} and s.mean == {"recall@1": 0.0, "ndcg@1": 0.0, "mrr@1": 0.0}
