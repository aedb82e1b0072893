"""Artifacts: structural schema compatibility, writing and reading tables, refs."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from orchestrator.artifacts import Ref, Table, schema_problems, write_artifact
from orchestrator.errors import StageOutputError
from tests.toy.stages import Numbers


def test_schema_compatibility_is_structural():
    doc = pa.struct([("id", pa.string())])
    rich_doc = pa.struct([("id", pa.string()), ("score", pa.float32())])
    consumer = pa.schema([("ctxs", pa.list_(doc))])
    producer = pa.schema([("q", pa.string()), ("ctxs", pa.list_(rich_doc))])
    assert schema_problems(consumer, producer) == []
    assert schema_problems(producer, consumer) == [
        "column 'q' is missing (expected string)", "column 'ctxs'.score is missing (expected float)"]
    assert schema_problems(pa.schema([("x", pa.int32())]), pa.schema([("x", pa.int64())])) == [
        "column 'x' is int64, expected int32"]


def test_write_and_read_table_with_extra_columns_and_shard_ranges(tmp_path):
    rows = [{"id": str(i), "x": float(i), "extra": i * 2} for i in range(10)]
    ref = write_artifact(rows, Numbers, tmp_path / "t", "step.out", "k")
    manifest = json.loads((tmp_path / "t" / "_manifest.json").read_text())
    assert manifest["format"] == "ragline-artifact/1" and manifest["num_rows"] == 10
    assert (tmp_path / "t" / "_preview.jsonl").read_text().count("\n") == 5
    table = Numbers(ref, 3, 6).read()
    assert table.column("x").to_pylist() == [3.0, 4.0, 5.0]
    assert table.column("extra").to_pylist() == [6, 8, 10]  # extra columns pass through
    again = write_artifact(rows, Numbers, tmp_path / "u", "step.out", "k")
    assert again.content_hash == ref.content_hash  # same rows, same bytes, same hash


def test_extra_columns_are_every_row_keys_not_only_the_first_rows(tmp_path):
    rows = [{"id": "0", "x": 0.0}, {"id": "1", "x": 1.0, "late": ["a"]}]
    ref = write_artifact(rows, Numbers, tmp_path / "t", "step.out", "k")
    assert Numbers(ref).read().column("late").to_pylist() == [None, ["a"]]


def test_write_rejects_rows_of_the_wrong_type(tmp_path):
    """Rows that do not fit are the stage's bug (StageOutputError, not the DataError of bad
    input), named down to the column, its type, the row and the value."""
    with pytest.raises(StageOutputError) as e:
        write_artifact([{"id": "0", "x": 0.5}, {"id": "1", "x": "not a number"}], Numbers,
                       tmp_path / "t", "bad.out", "k")
    assert e.value.message == ("step 'bad' output 'out': rows do not fit Numbers: column 'x' "
                               "(double): row 1 has 'not a number' (str)")
    assert e.value.hint == ("fix the stage's return value: Numbers expects a list of row dicts "
                            "(or a pyarrow.Table) with the columns id (string), x (double)")
    with pytest.raises(StageOutputError, match="column 'x' is missing"):
        write_artifact(pa.table({"id": ["1"]}), Numbers, tmp_path / "t2", "bad.out", "k")


def test_a_fraction_in_an_integer_column_is_refused_not_truncated(tmp_path):
    """pyarrow stores 1.5 in an int64 column as 1 without a word; 2.0 is a whole number."""
    class Counts(Table):
        schema = pa.schema([("id", pa.string()), ("n", pa.int64())])

    ref = write_artifact([{"id": "0", "n": 2.0}], Counts, tmp_path / "ok", "s.out", "k")
    assert Counts(ref).read().column("n").to_pylist() == [2]
    with pytest.raises(StageOutputError) as e:
        write_artifact([{"id": "0", "n": 2}, {"id": "1", "n": 1.5}], Counts, tmp_path / "t",
                       "s.out", "k")
    assert e.value.message == ("step 's' output 'out': rows do not fit Counts: column 'n' "
                               "(int64): row 1 has 1.5 (float), which would be stored as 1")


def test_rows_that_never_have_a_declared_column_are_refused_not_filled_with_nulls(tmp_path):
    """A misnamed key (``y`` for ``x``) was cached as a column of nulls and broke the next
    step; a column missing from some rows only is still null there."""
    with pytest.raises(StageOutputError) as e:
        write_artifact([{"id": "0", "y": 0.0}], Numbers, tmp_path / "t", "boom.out", "k")
    assert e.value.message == ("step 'boom' output 'out': no row has the column 'x' that Numbers "
                               "declares; the rows have: id, y")
    assert not list((tmp_path / "t").glob("*.parquet"))
    ref = write_artifact([{"id": "0", "x": 1.0}, {"id": "1"}], Numbers, tmp_path / "u", "s.out", "k")
    assert Numbers(ref).read().column("x").to_pylist() == [1.0, None]


def test_ref_roundtrip():
    ref = Ref("table", "m:T", "h", ["/a"], [3], "s.out")
    assert Ref(**ref.to_json()) == ref


def _numbers(tmp_path, n, name="t"):
    rows = [{"id": str(i), "x": float(i)} for i in range(n)]
    return Numbers(write_artifact(rows, Numbers, tmp_path / name, "step.out", "k"))


def test_tables_are_written_in_bounded_row_groups_and_shards_read_only_theirs(tmp_path,
                                                                           monkeypatch):
    import pyarrow.parquet as pq

    import orchestrator.artifacts as artifacts

    monkeypatch.setattr(artifacts, "GROUP_ROWS", 10)
    monkeypatch.setattr(artifacts, "group_rows", lambda table: 10)
    table = _numbers(tmp_path, 45)
    assert pq.ParquetFile(table.ref.paths[0]).metadata.num_row_groups == 5
    read_groups = []
    real = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, group, **kw: read_groups.append(group)
                        or real(self, group, **kw))
    shard = Numbers(table.ref, 12, 27)
    got = shard.read(["x"])
    assert got.column("x").to_pylist() == [float(i) for i in range(12, 27)]
    assert read_groups == [1, 2]          # rows 10..29 only, a group at a time
    assert got.column("x").num_chunks == 2   # not combined: the table is never held twice
    assert Numbers(table.ref, 45, 45).read().num_rows == 0


def test_iter_batches_streams_one_row_group_at_a_time(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import orchestrator.artifacts as artifacts

    monkeypatch.setattr(artifacts, "group_rows", lambda table: 10)
    table = _numbers(tmp_path, 45)
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", None)   # never read whole
    shard = Numbers(table.ref, 3, 44)
    batches = list(shard.iter_batches(batch_size=15))
    assert [len(b) for b in batches] == [15, 15, 11]
    assert [r["id"] for b in batches for r in b] == [str(i) for i in range(3, 44)]
    it = shard.iter_tables(batch_size=4, columns=["x"])
    assert next(it).column("x").to_pylist() == [3.0, 4.0, 5.0, 6.0]   # before reading group 1
    rows = shard.iter_rows(batch_size=15)       # the same rows, a dict at a time
    assert next(rows) == {"id": "3", "x": 3.0}
    assert [next(rows)] + list(rows) == shard.rows()[1:]


def test_take_reads_only_the_row_groups_holding_the_positions(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import orchestrator.artifacts as artifacts

    monkeypatch.setattr(artifacts, "group_rows", lambda table: 10)
    table = _numbers(tmp_path, 45)
    groups = []
    real = pq.ParquetFile.iter_batches
    monkeypatch.setattr(pq.ParquetFile, "iter_batches",
                        lambda self, *a, row_groups, **kw: groups.extend(row_groups)
                        or real(self, *a, row_groups=row_groups, **kw))
    shard = Numbers(table.ref, 5, 45)          # positions are relative to the handle
    got = shard.take([30, 0, 30, 2], columns=["id"])
    assert got.column("id").to_pylist() == ["35", "5", "35", "7"]
    assert got.column_names == ["id"] and sorted(groups) == [0, 3]
    assert shard.take([]).num_rows == 0
    with pytest.raises(IndexError, match=r"positions must lie in \[0, 40\)"):
        shard.take([40])


def test_take_decodes_row_groups_on_threads_and_keeps_the_order(tmp_path, monkeypatch):
    import numpy as np

    import orchestrator.artifacts as artifacts

    monkeypatch.setattr(artifacts, "group_rows", lambda table: 10)
    table = _numbers(tmp_path, 95)
    positions = np.random.default_rng(0).integers(0, 95, 60)
    got = {}
    for threads in (1, 4):
        monkeypatch.setattr(artifacts, "TAKE_THREADS", threads)
        got[threads] = table.take(positions, columns=["id"]).column("id").to_pylist()
        assert table.take(np.unique(positions)).column("id").to_pylist() == \
            [str(i) for i in np.unique(positions)]
    assert got[1] == got[4] == [str(p) for p in positions]


def test_row_group_rule_keeps_hashes_deterministic(tmp_path):
    a, b = _numbers(tmp_path, 70_000, "a"), _numbers(tmp_path, 70_000, "b")
    assert a.ref.content_hash == b.ref.content_hash
    import pyarrow.parquet as pq
    assert pq.ParquetFile(a.ref.paths[0]).metadata.num_row_groups == 2


def test_equal_rows_with_a_different_memory_layout_give_the_same_hash(tmp_path):
    texts = pa.array(["t" * 700] * 3000)
    with_bitmap = pa.array(["t" * 700] * 2999 + [None]).fill_null("t" * 700)
    a = write_artifact(pa.table({"id": texts, "x": pa.array([1.0] * 3000)}), Numbers,
                       tmp_path / "a", "s.o", "k")
    b = write_artifact(pa.table({"id": with_bitmap, "x": pa.array([1.0] * 3000)}), Numbers,
                       tmp_path / "b", "s.o", "k")
    assert a.content_hash == b.content_hash


def test_equal_rows_in_different_chunks_give_the_same_hash(tmp_path):
    """A stage that builds its table in pieces (a reader converting rows a batch at a time,
    ``retrieve`` building ``ctxs`` 256 questions at a time) writes the bytes of the same rows
    in one piece: Parquet's pages follow the chunks they are given, so the hash, and every
    step downstream, would otherwise depend on how the rows were built."""
    n = 20_000   # about 4 MB of ids: several Parquet pages
    table = pa.table({"id": [f"{i:06d}" * 30 for i in range(n)], "x": [float(i) for i in range(n)]})
    pieces = pa.concat_tables([table.slice(lo, 700) for lo in range(0, n, 700)])
    assert pieces.column("id").num_chunks == 29
    a = write_artifact(table, Numbers, tmp_path / "a", "s.o", "k")
    b = write_artifact(pieces, Numbers, tmp_path / "b", "s.o", "k")
    assert a.content_hash == b.content_hash


def test_parts_whose_pass_through_column_typed_differently_read_as_one_table(tmp_path):
    """Two shards' parts of one output: in one, an extra column is null in every row (Arrow
    types it null), in the other it holds lists. Reading, streaming and taking across both
    parts promote the null type instead of raising ArrowInvalid ('Schema at index 1 was
    different')."""
    a = write_artifact([{"id": "0", "x": 0.0, "ctxs": None}, {"id": "1", "x": 1.0, "ctxs": None}],
                       Numbers, tmp_path / "a", "s.out", "k")
    b = write_artifact([{"id": "2", "x": 2.0, "ctxs": [{"t": "p"}]}], Numbers, tmp_path / "b",
                       "s.out", "k")
    ref = Ref("table", a.type, "h", a.paths + b.paths, a.rows + b.rows, "s.out")
    whole = Numbers(ref)
    assert whole.read().column("ctxs").to_pylist() == [None, None, [{"t": "p"}]]
    assert [r["ctxs"] for t in whole.iter_tables(2) for r in t.to_pylist()] == [
        None, None, [{"t": "p"}]]
    assert whole.take([2, 0]).column("ctxs").to_pylist() == [[{"t": "p"}], None]
