"""``selfrag.label`` reads, of the per-sentence and initial retrievals, only the rows of its own
shard's items, their passages cut to the ``top_n`` it judges (memory audit 44: every shard held
both whole tables as Python rows, about 15 GB a shard at the paper's 150,000 instructions)."""

from __future__ import annotations

from stages.schemas import Retrieved
from stages.selfrag.label import rows_of


def test_only_the_shards_rows_and_the_passages_judged(env):
    table, _, _ = env
    ctxs = [{"id": f"p{i}", "title": f"T{i}", "text": f"text {i}", "score": 1.0}
            for i in range(5)]
    rows = [{"id": f"q{q}#{k}", "dataset": "nq", "question": "q", "answers": ["a"],
             "gold": [], "ctxs": ctxs if k else None} for q in range(4) for k in range(2)]
    got = rows_of(table(Retrieved, rows), ["q1#0", "q1#1", "q3#1", "q9#0"], 2)
    assert sorted(got) == ["q1#0", "q1#1", "q3#1"]
    assert [c["id"] for c in got["q1#1"]["ctxs"]] == ["p0", "p1"]
    assert got["q1#0"]["ctxs"] is None
