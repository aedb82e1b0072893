"""Rows to a table of a declared schema."""

from __future__ import annotations

import pyarrow as pa

from stages.lib.data.tables import to_table


def test_to_table_fills_lists_and_keeps_schema():
    ctx = pa.struct([("id", pa.string()), ("title", pa.string()), ("text", pa.string()),
                     ("score", pa.float32())])
    schema = pa.schema([("id", pa.string()), ("dataset", pa.string()), ("question", pa.string()),
                        ("answers", pa.list_(pa.string())), ("gold", pa.list_(pa.string())),
                        ("ctxs", pa.list_(ctx))])
    rows = [{"id": "1", "dataset": "d", "question": "q", "answers": ["a"], "gold": None,
             "ctxs": [{"id": None, "title": "t", "text": "x", "score": None}], "extra": 1},
            {"id": "2", "dataset": "d", "question": "r", "answers": ["b"]}]
    table = to_table(rows, schema)
    assert table.schema == schema
    assert table.column("gold").to_pylist() == [[], []]
    assert table.column("ctxs").to_pylist()[1] == []


def test_doctests():
    import doctest

    from stages.lib.data import tables

    assert doctest.testmod(tables).failed == 0


def test_take_rows_gathers_across_chunks_without_concatenating_them(monkeypatch):
    import numpy as np
    import pyarrow as pa

    from stages.lib.data.tables import take_rows

    table = pa.concat_tables([pa.table({"x": list(range(a, a + 5)), "s": [str(i) for i in
                                                                          range(a, a + 5)]})
                              for a in range(0, 20, 5)])
    monkeypatch.setattr(pa, "concat_arrays", None)   # no whole-column concatenation
    idx = np.random.default_rng(0).integers(0, 20, 50)
    got = take_rows(table, idx)
    assert got.column("x").to_pylist() == idx.tolist()
    assert got.column("s").to_pylist() == [str(i) for i in idx]
    assert take_rows(table, []).num_rows == 0 and take_rows(table, []).schema == table.schema
