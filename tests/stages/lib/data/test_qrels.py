"""Qrels: read and merged into questions' gold ids."""

from __future__ import annotations

from stages.lib.data.qrels import merge_qrels, read_qrels
from tests.stages.lib.data.files_helpers import write


def test_qrels_merge(tmp_path):
    q = write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td3\t2\n")
    qrels = read_qrels(q)
    assert qrels == {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}
    trec = write(tmp_path / "qrels.trec", "q1 0 d9 1\n")
    assert read_qrels(trec) == {"q1": {"d9": 1}}
    rows = [{"id": "q1", "gold": []}, {"id": "q2", "gold": ["d0"]}, {"id": "q3", "gold": []}]
    merged = list(merge_qrels(rows, qrels))
    assert [r["gold"] for r in merged] == [["d1"], ["d0", "d3"], []]
    assert rows[0]["gold"] == []  # not modified


def test_doctests():
    import doctest

    from stages.lib.data import qrels

    assert doctest.testmod(qrels).failed == 0


def test_qrels_that_judge_few_of_the_questions_are_named():
    """qrels for other ids than the questions' gave no warning: none, or few, matched (a file
    without ids numbers its questions 1, 2, ...). A BEIR folder's qrels judge some of its
    queries, all of theirs matching, and a limit (max_eval) may cut the judged ones: no
    warning for those."""
    from stages.lib.data.qrels import qrels_mismatch

    qrels = {f"q{i}": {"d1": 1} for i in range(10)}
    few = qrels_mismatch(qrels, ["q0"] + [str(i) for i in range(1, 10)], "t.tsv")
    assert few.startswith("t.tsv: only 1 of the 10 query ids of the qrels are ids of the 10 "
                          "questions (qrels: 'q1', ...; questions: '1', ...): 9 questions get "
                          "no gold passage id from them;")
    assert qrels_mismatch(qrels, ["q0"] + [str(i) for i in range(1, 10)], "t", cut=True) is None
    assert qrels_mismatch(qrels, [f"q{i}" for i in range(100)], "t") is None   # BEIR's queries
    assert qrels_mismatch(qrels, ["x"], "t", cut=True).startswith("t: none of the 10")
