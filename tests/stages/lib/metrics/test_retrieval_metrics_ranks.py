"""Retrieval metrics of shipped passage lists keep each passage's rank: before, a passage
without an id, or repeating an earlier one, was dropped and every later passage moved up, so
recall and MRR were inflated."""

from stages.lib.metrics.passage_scores import gold_passage_scores


def _scores(ctxs, gold):
    record: dict = {}
    gold_passage_scores([{"gold": gold, "ctxs": ctxs}], [record], ks=[1, 2])
    return record


def test_a_passage_without_an_id_keeps_its_rank():
    s = _scores([{"id": None}, {"id": "d1"}], ["d1"])
    assert s["recall@1"] == 0.0 and s["mrr@2"] == 0.5     # before: 1.0 and 1.0


def test_a_repeated_passage_keeps_its_rank():
    s = _scores([{"id": "d2"}, {"id": "d2"}, {"id": "d1"}], ["d1"])
    assert s["recall@2"] == 0.0                           # before: 1.0
