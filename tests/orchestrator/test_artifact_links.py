"""A run's ``artifacts/`` links are readable as they are by the usual Parquet readers: a table is a
folder of parts, a sharded one a folder of shard folders, and the ``_manifest.json`` /
``_preview.jsonl`` beside the parts are skipped (the README's ``pandas.read_parquet`` line)."""

from __future__ import annotations

import pyarrow.parquet as pq

from tests.conftest import rag


def test_a_runs_table_artifacts_read_with_pyarrow_and_pandas_in_row_order(toy):
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "--no-progress", runs=runs) == 0
    links = runs / "latest" / "artifacts"
    sharded = pq.read_table(links / "retrieve.out")           # 4 shards, 2 rows each
    assert sorted(p.name for p in (links / "retrieve.out").iterdir())[0] == "shard-00000"
    assert sharded.column("id").to_pylist() == [str(i) for i in range(8)]
    assert sharded.column("x").to_pylist() == [2.0 * i for i in range(8)]
    whole = pq.read_table(links / "dpo.out")                  # one shard: a folder of parts
    assert whole.num_rows == 8 and whole.column_names == ["id", "x"]

    import pandas

    frame = pandas.read_parquet(links / "retrieve.out")
    assert frame["x"].tolist() == [2.0 * i for i in range(8)]
