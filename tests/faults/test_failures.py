"""Environment failures are step failures or one clear line, never an internal error or a record
stuck at ``running`` (issue 6 item 7; review probes 5o, 6c, 6f and the SLURM extra)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from tests.conftest import rag
from tests.faults.faultkit import needs_mount, run_mounted

SHARDED = """ragline:
  imports: [tests.toy.stages]
  executor: {name: local, max_parallel: 2}
steps:
  gen: {stage: toy_gen, n: 8}
  smap: {stage: toy_map, inputs: {numbers: gen}, shards: 2}
  total: {stage: toy_sum, inputs: {numbers: smap}}
"""

BLOBS = """ragline:
  imports: [tests.toy.stages]
  executor: {name: local, max_parallel: 2}
steps:
  gen: {stage: toy_gen, n: 200}
  blob: {stage: toy_blob, inputs: {numbers: gen}, shards: 2}
  read: {stage: toy_read_blob, inputs: {blob: blob}}
"""


def _recipe(tmp: Path, text: str) -> Path:
    path = tmp / "conf" / "r.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _status(runs: Path) -> dict:
    return json.loads((runs / "latest" / "status.json").read_text())


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def test_slurm_executor_without_submitit_names_the_extra(toy, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    recipe = _recipe(toy, SHARDED.replace("{name: local, max_parallel: 2}", "{name: slurm}"))
    assert rag("run", str(recipe), runs=toy / "runs") == 2
    err = _err(capsys)
    assert "error: executor=slurm needs submitit, which is not installed" in err
    assert "hint: pip install -e '.[slurm]'" in err
    assert _status(toy / "runs")["state"] == "failed"


@needs_mount
def test_read_only_cache_is_refused_before_any_step_runs(toy):
    recipe = _recipe(toy, SHARDED)
    assert rag("run", str(recipe), "--only", "gen", runs=toy / "runs") == 0  # gen cached
    cache = toy / "runs" / "cache"
    out = run_mounted(toy, f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache}",
                      str(recipe), "--runs-dir", str(toy / "runs"))
    err = " ".join(out.stderr.split())
    assert out.returncode == 2, out.stderr
    assert "internal error" not in err and "✗" not in err   # no step started
    assert re.search(r"cache directory \S+ is not writable \(Read-only file system\)", err)


@needs_mount
def test_full_disk_in_a_sharded_step_is_a_step_failure(toy):
    recipe = _recipe(toy, BLOBS)
    cache = toy / "runs" / "cache"
    cache.mkdir(parents=True)
    # 256 KiB: gen's table fits; 200 one-row files (a page each) do not.
    out = run_mounted(toy, f"mount -t tmpfs -o size=256k tmpfs {cache}", str(recipe),
                      "--runs-dir", str(toy / "runs"))
    err = " ".join(out.stderr.split())
    assert out.returncode == 1, out.stderr
    assert "internal error" not in err
    assert re.search(r"✗ blob\[[01,]+/2\] failed: cache directory \S+: the disk is full \(No space "
                     r"left on device\); free space \(e.g. rag gc\) and rerun", err)
    assert "- read skipped (upstream 'blob' failed)" in err
    status = _status(toy / "runs")
    assert status["state"] == "failed" and status["steps"]["blob"]["state"] == "failed"


@pytest.mark.parametrize("shards", [1, 2])
def test_full_error_shows_the_step_traceback(toy, capsys, monkeypatch, shards):
    """In-process (1 shard) and in a worker (2 shards)."""
    monkeypatch.setenv("RAGLINE_FULL_ERROR", "1")
    monkeypatch.setenv("TOY_FAIL", "smap:0")
    recipe = _recipe(toy, SHARDED.replace("shards: 2", f"shards: {shards}"))
    assert rag("run", str(recipe), runs=toy / "runs") == 1
    err = capsys.readouterr().err
    assert "failed: RuntimeError: toy failure in smap:0" in err
    assert "Traceback (most recent call last)" in err
    assert 'raise RuntimeError(f"toy failure in {me}")' in err


def test_without_full_error_one_line_and_the_log(toy, capsys, monkeypatch):
    monkeypatch.delenv("RAGLINE_FULL_ERROR", raising=False)
    monkeypatch.setenv("TOY_FAIL", "smap:1")
    assert rag("run", str(_recipe(toy, SHARDED)), runs=toy / "runs") == 1
    err = capsys.readouterr().err
    assert "✗ smap[1/2] failed: RuntimeError: toy failure in smap:1" in err
    assert "Traceback" not in err
    log = toy / "runs" / "latest" / "logs" / "smap.shard-00001.log"
    assert "Traceback (most recent call last)" in log.read_text()


def test_shards_that_fail_the_same_way_are_one_line(toy, capsys, monkeypatch):
    """A bad setting fails every shard with the same message: it was printed once per shard
    (with its hint and log: three lines a shard, 24 at 8 shards)."""
    monkeypatch.delenv("RAGLINE_FULL_ERROR", raising=False)
    monkeypatch.setenv("TOY_FAIL", "smap:all")
    assert rag("run", str(_recipe(toy, SHARDED)), runs=toy / "runs") == 1
    err = capsys.readouterr().err
    assert err.count("toy failure in every shard of smap") == 1, err
    assert "✗ smap[0,1/2] failed: RuntimeError: toy failure in every shard of smap" in err
    assert "smap.shard-00000.log (the other shards' logs beside it)" in err
    assert _status(toy / "runs")["steps"]["smap"]["state"] == "failed"


def test_cuda_visible_devices_without_a_gpu_fails_before_running(toy, capsys, monkeypatch):
    from orchestrator.executors.gpus import gpu_driver_present

    if gpu_driver_present():
        pytest.skip("this machine has a GPU driver")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    recipe = _recipe(toy, SHARDED.replace("shards: 2", "shards: 2, gpus: 1"))
    assert rag("run", str(recipe), runs=toy / "runs") == 2
    err = _err(capsys)
    assert ("error: steps.smap.gpus: 1 GPU(s) per shard asked for, but no CUDA GPU is visible "
            "on this machine") in err
    assert "hint: run on CPU with steps.smap.gpus=0, or use a GPU machine" in err
    assert not (toy / "count.txt").exists()  # nothing ran
