"""Artifacts: structural schema compatibility, writing and reading tables, refs."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from orchestrator.artifacts import Ref, schema_problems, write_artifact
from orchestrator.errors import DataError
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


def test_write_rejects_rows_of_the_wrong_type(tmp_path):
    with pytest.raises(DataError, match="step 'bad' output 'out': rows do not fit Numbers"):
        write_artifact([{"id": "1", "x": "not a number"}], Numbers, tmp_path / "t", "bad.out", "k")
    with pytest.raises(DataError, match="column 'x' is missing"):
        write_artifact(pa.table({"id": ["1"]}), Numbers, tmp_path / "t2", "bad.out", "k")


def test_ref_roundtrip():
    ref = Ref("table", "m:T", "h", ["/a"], [3], "s.out")
    assert Ref(**ref.to_json()) == ref
