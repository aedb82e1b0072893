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
