"""Stages of the executor conformance recipe (tests/executors/conf/conformance.yaml).

Their outputs depend only on their inputs and semantic config, so every executor must produce the
same cache keys and the same bytes. What differs between executors goes to a trace file instead
(``trace``, nonsemantic): one JSON line per execution with the process, the host, the GPUs it was
given and its rank, so the tests can check placement, GPU assignment and single flight through
the workers' own environment.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from orchestrator.api import Metrics, StageContext, Table, nonsemantic, stage


class Numbers(Table):
    schema = pa.schema([("id", pa.string()), ("x", pa.float64())])


class Total(Metrics):
    """Sum and count."""


@dataclass
class XcConfig:
    n: int = 8
    mul: float = 1.0
    trace: str = nonsemantic("")      # append one JSON line per execution here
    fail: str = nonsemantic("")       # a file; while it lists "step:shard", that task raises
    sleep: float = nonsemantic(0.0)   # seconds of work per task (kills, races)
    api_key: str = ""                 # a credential (never keyed): traced, so the tests see
                                      # a value read from the driver's environment arrive


def _trace(cfg: XcConfig, ctx: StageContext) -> None:
    if not cfg.trace:
        return
    line = {"step": ctx.step, "shard": ctx.shard_index, "pid": os.getpid(),
            "host": socket.gethostname(), "cvd": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "rank": os.environ.get("RANK"), "world": os.environ.get("WORLD_SIZE"),
            "job": os.environ.get("SLURM_JOB_ID"), "time": time.time(),
            "token": os.environ.get("RAGLINE_TEST_TOKEN"),   # a credential reaches the worker
            "api_key": cfg.api_key or None}
    with open(cfg.trace, "a") as f:
        f.write(json.dumps(line) + "\n")


def _work(cfg: XcConfig, ctx: StageContext) -> None:
    _trace(cfg, ctx)
    if cfg.fail and Path(cfg.fail).is_file():
        if f"{ctx.step}:{ctx.shard_index}" in Path(cfg.fail).read_text().split():
            raise RuntimeError(f"injected failure in {ctx.step}:{ctx.shard_index}")
    if cfg.sleep:
        time.sleep(cfg.sleep)


@stage("xc_source", version=1)
def xc_source(cfg: XcConfig) -> Numbers:
    """Numbers 0..n-1: the shared upstream of every other step."""
    return [{"id": str(i), "x": float(i)} for i in range(cfg.n)]


@stage("xc_map", version=1, shard_by="numbers")
def xc_map(numbers: Numbers, cfg: XcConfig, ctx: StageContext) -> Numbers:
    """x -> x * mul, shardable."""
    _work(cfg, ctx)
    return [{"id": r["id"], "x": r["x"] * cfg.mul} for r in numbers.rows()]


@stage("xc_train", version=1)
def xc_train(numbers: Numbers, cfg: XcConfig, ctx: StageContext) -> Numbers:
    """Stands for a data-parallel training step: every rank runs it, rank 0's output is kept."""
    _work(cfg, ctx)
    return [{"id": r["id"], "x": r["x"] * cfg.mul + 1.0} for r in numbers.rows()]


@stage("xc_sum", version=1)
def xc_sum(numbers: Numbers, cfg: XcConfig) -> Total:
    rows = numbers.rows()
    return {"sum": float(sum(r["x"] for r in rows)), "count": len(rows)}


def _one_process_stage():
    """``xc_one_process``: a 2-GPU step that must run as ONE process seeing both GPUs (an inference
    engine with tensor parallelism)."""

    @stage("xc_one_process", version=1, multi_gpu="one_process")
    def xc_one_process(numbers: Numbers, cfg: XcConfig, ctx: StageContext) -> Numbers:
        _work(cfg, ctx)
        return [{"id": r["id"], "x": r["x"] * cfg.mul} for r in numbers.rows()]


_one_process_stage()
