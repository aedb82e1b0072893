"""One conformance suite for every executor (local, Ray, SLURM), on the recipe of
tests/executors/conf/conformance.yaml: a shared upstream, a CPU-sharded step, a GPU-sharded step,
a multi-GPU step (one gang of two ranks) and a light step.

Every executor must give the same cache keys and byte-identical artifacts; a failed shard leaves
the others cached and the rerun recomputes only it; two runs racing on a key compute it once;
GPUs are assigned through the workers' own environment; a killed driver leaves nothing running;
the run record names the executor, the job ids and each task's log.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.executors.conftest import Conformance

CACHED_STEPS = ("source", "cpu_map", "gpu_map", "train", "total")


def _fingerprint(xc: Conformance) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """step -> [(key, {file: sha256})] of every task of the latest run, from the cache."""
    status = xc.status()
    out = {}
    for step in CACHED_STEPS:
        tasks = []
        for key in status["steps"][step]["keys"]:
            entry = next((xc.cache / "objects").glob(f"*/{key}"))
            files = {str(p.relative_to(entry / "outputs")): hashlib.sha256(p.read_bytes()).hexdigest()
                     for p in sorted((entry / "outputs").rglob("*")) if p.is_file()}
            tasks.append((key, files))
        out[step] = tasks
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The local executor's keys and bytes: what every executor must reproduce."""
    ref = Conformance(tmp_path_factory.mktemp("reference"), "local")
    code, out = ref.run()
    assert code == 0, out
    return _fingerprint(ref)


def _check_record(xc: Conformance) -> None:
    """The run record names the executor, each task's job id (cluster executors) and its log."""
    status = xc.status()
    assert status["executor"] == xc.executor
    for step in ("cpu_map", "gpu_map", "train"):
        rec = status["steps"][step]
        logs = rec["log"] if isinstance(rec["log"], list) else [rec["log"]]
        paths = [p for log in logs for p in ([Path(log)] if Path(log).is_file()
                                             else sorted(Path(log).glob(f"{step}.shard-*.log")))]
        assert len(paths) == rec["shards"], (step, rec)
        assert all(p.stat().st_size > 0 for p in paths)
        if xc.executor != "local":
            assert len(rec["jobs"]) == rec["shards"] and all(rec["jobs"]), (step, rec)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").is_dir() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_same_keys_bytes_gpu_assignment_and_record(xc, reference):
    code, out = xc.run()
    assert code == 0, out
    assert _fingerprint(xc) == reference
    _check_record(xc)
    traces = xc.traces()
    cpu = [t for t in traces if t["step"] == "cpu_map"]
    gpu = [t for t in traces if t["step"] == "gpu_map"]
    train = [t for t in traces if t["step"] == "train"]
    assert sorted(t["shard"] for t in cpu) == [0, 1, 2, 3]
    assert all(t["cvd"] in ("", None) for t in cpu), cpu            # CPU shards see no GPU
    assert sorted(t["shard"] for t in gpu) == [0, 1]
    assert all(t["cvd"] in ("0", "1") for t in gpu), gpu            # one GPU each
    # the multi-GPU step is one gang: two ranks, world size 2, both given both GPUs, one job
    assert sorted(t["rank"] for t in train) == ["0", "1"], train
    assert {t["world"] for t in train} == {"2"} and {t["cvd"] for t in train} == {"0,1"}
    assert len({t["job"] for t in train}) == 1


def test_failed_shard_rerun_recomputes_only_it(xc):
    xc.fail_file.write_text("cpu_map:2\n")
    code, out = xc.run()
    assert code == 1, out
    assert "injected failure in cpu_map:2" in out
    status = xc.status()
    assert status["steps"]["cpu_map"]["state"] == "failed"
    assert status["steps"]["gpu_map"]["state"] == "done"          # independent branch finished
    assert xc.executions("cpu_map") == {0: 1, 1: 1, 2: 1, 3: 1}
    xc.fail_file.unlink()
    code, out = xc.run()
    assert code == 0, out
    assert xc.executions("cpu_map") == {0: 1, 1: 1, 2: 2, 3: 1}   # only the failed shard again
    assert xc.executions("gpu_map") == {0: 1, 1: 1}                # cached
    assert xc.executions("train") == {0: 1}


def test_racing_runs_compute_each_key_once(xc):
    """Two drivers on one cache, one of them the local executor: each task runs once in all."""
    first = xc.start("steps.cpu_map.sleep=2")
    time.sleep(0.5)
    second = xc.start("steps.cpu_map.sleep=2", executor="local", runs=xc.root / "runs2")
    for proc in (first, second):
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out
    assert xc.executions("cpu_map") == {0: 1, 1: 1, 2: 1, 3: 1}
    assert xc.executions("gpu_map") == {0: 1, 1: 1}
    assert xc.executions("train") == {0: 1}


def test_one_process_step_sees_all_its_gpus(xc):
    """A stage declared ``multi_gpu="one_process"`` with gpus: 2 runs as one process given both."""
    step = (f"+steps.tp={{stage: xc_one_process, inputs: {{numbers: source}}, gpus: 2, "
            f"trace: '{xc.trace}'}}")
    code, out = xc.run(step, "--only", "source")
    assert code == 0, out
    code, out = xc.run(step, "--only", "tp")
    assert code == 0, out
    tp = [t for t in xc.traces() if t["step"] == "tp"]
    assert len(tp) == 1 and tp[0]["cvd"] == "0,1" and tp[0]["rank"] is None, tp


def _wait_for(cond, limit: float, what: str):
    end = time.time() + limit
    while time.time() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {limit}s waiting for {what}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_killed_driver_leaves_no_work_running(xc, sig):
    proc = xc.start("steps.cpu_map.sleep=60", "steps.gpu_map.sleep=60")
    _wait_for(lambda: len([t for t in xc.traces() if t["step"] == "cpu_map"]) >= 1, 120,
              "a cpu_map shard to start")
    time.sleep(0.5)
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    pids = [t["pid"] for t in xc.traces()]
    # SIGINT cancels at once; after SIGKILL a cluster job notices the driver's heartbeat stopped
    limit = 20 if sig == signal.SIGINT or xc.executor != "slurm" else 40
    _wait_for(lambda: not any(_pid_alive(p) for p in pids), limit, f"workers {pids} to exit")
    if xc.executor == "slurm":
        _wait_for(lambda: not subprocess.run(["squeue", "-h", "-n", "ragline-cpu_map"],
                                             capture_output=True, text=True).stdout.strip(),
                  limit, "the step's SLURM jobs to leave the queue")
    keys = xc.status()["steps"]["cpu_map"]["keys"]
    assert not any(any((xc.cache / "objects").glob(f"*/{k}")) for k in keys)  # nothing half-done committed
