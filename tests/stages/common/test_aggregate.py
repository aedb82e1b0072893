"""``aggregate`` called directly.

Inputs are real handles (files, tables written by the orchestrator's writer) and every output is
written back through it, so a row that does not fit the declared schema fails here.
"""

from __future__ import annotations

import pytest

from stages.common.aggregate import AggregateConfig, aggregate, fuse, merge_retrieved
from stages.schemas import Retrieved


def retrieved(qid, ids, question="q?"):
    return {"id": qid, "dataset": "nq", "question": question, "answers": ["a"], "gold": [],
            "ctxs": [{"id": i, "title": f"T{i}", "text": f"text {i}", "score": float(10 - n)}
                     for n, i in enumerate(ids)]}


def test_fuse_methods_and_k():
    a = [{"id": "x"}, {"id": "y"}, {"id": "x"}]
    b = [{"id": "y"}, {"id": "z"}]
    assert [d["id"] for d in fuse([a, b], "concat")] == ["x", "y", "z"]
    assert [d["id"] for d in fuse([a, b], "interleave")] == ["x", "y", "z"]
    rrf = fuse([a, b], "rrf")
    assert [d["id"] for d in rrf] == ["y", "x", "z"]  # y: 1/62 + 1/61 beats x: 1/61
    assert rrf[0]["score"] == pytest.approx(1 / 62 + 1 / 61)
    assert [d["id"] for d in fuse([a, b], "concat", k=2)] == ["x", "y"]
    no_ids = [{"id": None, "title": "t", "text": "same"}, {"id": None, "title": "t", "text": "same"}]
    assert len(fuse([no_ids])) == 1
    with pytest.raises(ValueError):
        fuse([a], "max")


def test_merge_retrieved_merges_duplicate_question_rows():
    rows = [retrieved("q1", ["a", "b"]), retrieved("q2", ["c"]), retrieved("q1", ["b", "d"])]
    out = merge_retrieved([rows], "concat")
    assert [(r["id"], [d["id"] for d in r["ctxs"]]) for r in out] == [("q1", ["a", "b", "d"]),
                                                                       ("q2", ["c"])]


def test_aggregate_stage_two_retrievers(env):
    table, written, ctx = env
    primary = table(Retrieved, [retrieved("q1", ["a", "b", "c"]), retrieved("q2", ["e"])])
    secondary = table(Retrieved, [retrieved("q1", ["c", "d"]), retrieved("q3", ["f"])])
    out = written(Retrieved, aggregate(primary, AggregateConfig(method="interleave", k=3),
                                       ctx("aggregate"), secondary))
    assert [(r["id"], [d["id"] for d in r["ctxs"]]) for r in out] == [
        ("q1", ["a", "c", "b"]), ("q2", ["e"]), ("q3", ["f"])]
    single = written(Retrieved, aggregate(table(Retrieved, [retrieved("q1", ["a", "a", "b"])]),
                                          AggregateConfig(), ctx("aggregate")))
    assert [d["id"] for d in single[0]["ctxs"]] == ["a", "b"]
    rrf = written(Retrieved, aggregate(primary, AggregateConfig(method="rrf"), ctx("aggregate"),
                                       secondary))
    assert rrf[0]["ctxs"][0]["id"] == "c"  # ranked 3rd and 1st: the best fused rank


@pytest.mark.parametrize("method", ["interleave", "concat", "rrf"])
def test_aggregate_a_batch_at_a_time_is_merge_retrieved_of_all_rows(env, monkeypatch, method):
    """The stage converts a batch of questions at a time (150k questions with 40 passages each
    would not fit as Python objects at once): a question id repeated in another batch, or in the
    other input, is still merged where it first appears, and columns beyond ``Retrieved``'s
    (``retrieved_question``) pass through."""
    import stages.common.aggregate as agg

    monkeypatch.setattr(agg, "BATCH_ROWS", 1)
    table, written, ctx = env
    primary_rows = [{**retrieved("q1", ["a", "b"]), "retrieved_question": "rq1"},
                    {**retrieved("q2", ["c", "c"]), "retrieved_question": "rq2"},
                    {**retrieved("q1", ["d", "a"]), "retrieved_question": "rq1 again"}]
    secondary_rows = [retrieved("q3", ["e"]), retrieved("q2", ["f", "c"])]
    out = written(Retrieved, aggregate(table(Retrieved, primary_rows),
                                       AggregateConfig(method=method, k=3), ctx("aggregate"),
                                       table(Retrieved, secondary_rows)))
    expected = merge_retrieved([primary_rows, secondary_rows], method, k=3)
    def shown(rows):   # scores are stored as float32
        return [(r["id"], r.get("retrieved_question"),
                 [(d["id"], round(d["score"], 5)) for d in r["ctxs"]]) for r in rows]

    assert shown(out) == shown(expected)
    assert [r["retrieved_question"] for r in out] == ["rq1", "rq2", None]


def test_aggregate_of_no_questions_is_an_empty_table(env):
    table, written, ctx = env
    assert written(Retrieved, aggregate(table(Retrieved, []), AggregateConfig(),
                                        ctx("aggregate"))) == []
