"""The local executor on a real GPU: a `gpus: 1` step's worker sees one device and its stage
runs on CUDA (ctx.device), a `gpus: 0` shard sees none. Run with `bash .ci/gpu.sh` (or
`python -m pytest tests/test_gpu_executor.py -m gpu`)."""

from __future__ import annotations

import json
import textwrap

import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

PROBE = '''
import os
from dataclasses import dataclass
import pyarrow as pa
from orchestrator.api import StageContext, Table, stage

class Seen(Table):
    schema = pa.schema([("id", pa.string()), ("device", pa.string()), ("cvd", pa.string()),
                        ("cuda_ok", pa.bool_())])

@dataclass
class ProbeConfig:
    tag: str = ""   # gpus is not part of the cache key: a different tag per step

@stage("gpu_probe", version=1)
def gpu_probe(cfg: ProbeConfig, ctx: StageContext) -> Seen:
    import torch
    ok = False
    if ctx.device == "cuda":
        x = torch.ones(256, 256, device=ctx.device)
        ok = bool((x @ x).sum().item() == 256 ** 3)
    return [{"id": cfg.tag, "device": ctx.device,
             "cvd": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), "cuda_ok": ok}]
'''


def test_gpu_step_runs_on_cuda_and_cpu_step_does_not(tmp_path, monkeypatch):
    from tests.conftest import rag

    (tmp_path / "conf").mkdir()
    (tmp_path / "gpu_probe_stages.py").write_text(textwrap.dedent(PROBE))
    recipe = tmp_path / "conf" / "probe.yaml"
    recipe.write_text(textwrap.dedent("""
        ragline: {imports: [gpu_probe_stages], executor: {name: local, isolate: always}}
        steps:
          on_gpu: {stage: gpu_probe, gpus: 1, tag: on_gpu}
          on_cpu: {stage: gpu_probe, gpus: 0, tag: on_cpu}
        """))
    monkeypatch.chdir(tmp_path)
    assert rag("run", str(recipe), runs=tmp_path / "runs") == 0
    seen = {}
    for step in ("on_gpu", "on_cpu"):
        for p in sorted((tmp_path / "runs" / "latest" / "artifacts" / f"{step}.out").glob("*.parquet")):
            seen.update({r["id"]: r for r in pq.read_table(p).to_pylist()})
    print(json.dumps(seen))
    assert seen["on_gpu"]["device"] == "cuda" and seen["on_gpu"]["cuda_ok"]
    assert len(seen["on_gpu"]["cvd"].split(",")) == 1
    assert seen["on_cpu"]["device"] == "cpu" and seen["on_cpu"]["cvd"] == ""
