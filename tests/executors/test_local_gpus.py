"""GPU shard assignment by the local executor, checked on CPU: the workers' environment is what
is assigned, whether or not a CUDA device is really there (the driver check is faked)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from tests.conftest import rag


def _seen(runs) -> dict[str, str]:
    link = runs / "latest" / "artifacts" / "env.out"
    rows = [r for shard in sorted(link.iterdir()) for p in sorted(shard.glob("part-*.parquet"))
            for r in pq.read_table(p).to_pylist()]
    return {r["id"].split(":")[0]: r["word"] for r in rows}


@pytest.mark.parametrize("gpus_per_shard", [1, 2])
def test_shards_get_disjoint_gpus(toy, monkeypatch, gpus_per_shard):
    visible = "0,1,2,3" if gpus_per_shard == 1 else "4,5,6,7"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # a GPU worker inherits the runner's
    monkeypatch.setattr("orchestrator.executors.gpus.gpu_driver_present", lambda: True)
    recipe = toy / "conf" / "env.yaml"
    recipe.write_text(f"""
ragline: {{imports: [tests.toy.stages]}}
steps:
  gen: {{stage: toy_gen, n: 8}}
  env: {{stage: toy_env, inputs: {{numbers: gen}}, shards: 4, gpus: {gpus_per_shard}}}
""")
    assert rag("run", str(recipe), runs=toy / "runs") == 0
    seen = _seen(toy / "runs")
    if gpus_per_shard == 1:
        assert seen == {"0": "0|", "1": "1|", "2": "2|", "3": "3|"}  # four at once, one GPU each
    else:
        assert set(seen.values()) == {"4,5|", "6,7|"}  # two at a time, on disjoint pairs
    status = json.loads((toy / "runs" / "latest" / "status.json").read_text())
    assert status["steps"]["env"]["shards"] == 4


def test_cpu_shards_split_the_cores(toy, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    recipe = toy / "conf" / "env.yaml"
    recipe.write_text("""
ragline: {imports: [tests.toy.stages], executor: {name: local, max_parallel: 2}}
steps:
  gen: {stage: toy_gen, n: 4}
  env: {stage: toy_env, inputs: {numbers: gen}, shards: 2}
""")
    assert rag("run", str(recipe), runs=toy / "runs") == 0
    import os

    threads = str(max(1, (os.cpu_count() or 1) // 2))
    assert set(_seen(toy / "runs").values()) == {f"|{threads}"}
