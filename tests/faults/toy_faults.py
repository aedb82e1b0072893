"""Toy stages that misbehave on purpose, for the fault-injection tests."""

from __future__ import annotations

import os

from orchestrator.api import StageContext, stage
from tests.toy.stages import Blob, Numbers


@stage("fault_mutate", version=1)
def fault_mutate(blob: Blob) -> Numbers:
    """Reads its input directory, then appends to one of its files (as a trainer that saves into
    its input model directory would)."""
    files = sorted(blob.path.rglob("*.txt"))
    rows = [{"id": f.stem, "x": float(f.read_text())} for f in files]
    with open(files[0], "a") as fh:
        fh.write("0")
    return rows


@stage("fault_add_file", version=1)
def fault_add_file(blob: Blob) -> Numbers:
    """Leaves a new file inside its input directory."""
    (blob.path / "stray.txt").write_text("1")
    return [{"id": "0", "x": 0.0}]


@stage("fault_damage_input", version=1)
def fault_damage_input(numbers: Numbers) -> Numbers:
    """Its input is damaged while it runs (truncated under it), then it reads it and fails."""
    import os

    part = numbers.ref.paths[0]
    os.chmod(part, 0o644)
    with open(part, "r+b") as f:
        f.truncate(10)
    return numbers.rows()


@stage("fault_rewrite_last_part", version=1, shard_by="numbers")
def fault_rewrite_last_part(numbers: Numbers, ctx: StageContext) -> Numbers:
    """Shard 0 rewrites the input part holding the last rows, which only the last shard reads,
    with other values (a valid table: that shard reads it without an error)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rows = numbers.rows()
    if ctx.shard_index == 0:
        last = numbers.ref.paths[-1]
        table = pq.read_table(last)
        os.chmod(last, 0o644)           # committed files are read-only
        pq.write_table(table.set_column(1, "x", pc.multiply(table["x"], 100.0)), last)
    return rows
