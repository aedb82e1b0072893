"""SLURM executor items left alone by session 43 (/work/logs/fix_slurm44.md), without a cluster:

* item 1, the job side: SLURM's time-limit warning (SIGUSR2, sent to every process of the job
  step) killed the worker outright; now the worker inherits it blocked and is stopped with
  SIGTERM (its Ctrl-C path) once the job process's handler (submitit's) raises;
* item 2: with ``partition: a,b`` the GPU nodes of a gang were counted across all the listed
  partitions together, but SLURM runs a job in one partition, all its nodes there.

A fake ``sinfo`` on PATH (``_fake_slurm`` of test_slurm_audit43); a real child process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.errors import ConfigError
from orchestrator.store import Store
from tests.executors.conftest import REPO
from tests.executors.test_slurm_audit43 import _fake_slurm

# the job process of one array task: submitit's handler of the warning (raises for rank 0),
# run_shard_job with a worker that stops cleanly on SIGTERM, and SLURM's warning sent to the
# whole process group (as slurmstepd signals every process of the step)
JOB = textwrap.dedent("""
    import os, signal, sys, threading
    from orchestrator.executors import launch, slurm

    def submitit_handler(signum, frame):
        raise RuntimeError("Job not requeued because: timed-out and not checkpointable.")

    signal.signal(signal.SIGUSR2, submitit_handler)
    worker = ("import signal, sys, time\\n"
              "def stop(signum, frame):\\n"
              "    print('stopped by SIGTERM', flush=True); sys.exit(143)\\n"
              "signal.signal(signal.SIGTERM, stop)\\n"
              "print('worker started', flush=True)\\n"
              "time.sleep(60)\\n")
    launch.worker_argv = lambda task_file: [sys.executable, "-c", worker]
    log = sys.argv[1]

    def warn():   # once the worker runs: SLURM's SIGUSR2 to every process of the step
        while "worker started" not in open(log).read():
            threading.Event().wait(0.05)
        os.killpg(0, signal.SIGUSR2)

    threading.Thread(target=warn, daemon=True).start()
    try:
        slurm.run_shard_job("t.json", log, {}, None, None, 120.0, [])
    except RuntimeError as e:
        print("job ended:", e)
""")


def test_the_time_limit_warning_stops_the_worker_through_sigterm(tmp_path):
    """Item 1: the worker, which has no SIGUSR2 handler, died of the warning at once (its
    stage's temporary output left in the cache, no "stopped" line). Now it inherits the signal
    blocked, the job process's handler still runs (submitit's, raising), and run_worker stops
    the worker with SIGTERM, which the worker handles like Ctrl-C."""
    log = tmp_path / "task.log"
    log.touch()
    r = subprocess.run([sys.executable, "-c", JOB, str(log)], cwd=REPO, capture_output=True,
                       text=True, timeout=60, start_new_session=True)   # its own process group
    assert "job ended: Job not requeued because: timed-out" in r.stdout, (r.stdout, r.stderr)
    assert log.read_text().splitlines() == ["worker started", "stopped by SIGTERM"], \
        log.read_text()


# 'gpu' has four 4-GPU nodes, 'gpu-long' one 8-GPU node, 'big' one 8-GPU node (g1 is in two)
SINFO = ("g1|gpu:4|gpu|8|65536|infinite\ng2|gpu:4|gpu|8|65536|infinite\n"
         "g3|gpu:4|gpu|8|65536|infinite\ng4|gpu:4|gpu|8|65536|infinite\n"
         "h1|gpu:8|gpu-long|32|262144|infinite\nh2|gpu:8|big|32|262144|infinite\n"
         "g1|gpu:4|big|8|65536|infinite")


def _executor(tmp_path: Path, monkeypatch, partition: str):
    from orchestrator.executors.slurm import SlurmExecutor

    _fake_slurm(tmp_path, monkeypatch, SINFO)
    return SlurmExecutor(Store(tmp_path / "c"), {"name": "slurm", "partition": partition})


def _gang(gpus: int) -> SimpleNamespace:
    return SimpleNamespace(name="train", gpus=gpus, shards=1)


def test_a_gang_must_fit_one_listed_partition(tmp_path, monkeypatch):
    """Item 2: 16 GPUs over `gpu-long,big` (one 8-GPU node in each) passed the check, as two
    8-GPU nodes, though SLURM puts a job in one partition (it would pend forever). Now each
    partition is counted on its own and the error names each one's count."""
    ex = _executor(tmp_path, monkeypatch, "gpu-long,big")
    ex.check_resources([_gang(8)])                       # one node of either fits
    with pytest.raises(ConfigError) as e:
        ex.check_resources([_gang(16)])
    message = e.value.message
    assert message.startswith("steps.train.gpus: 16 GPUs as one job on whole nodes of one "
                              "partition"), message
    assert "'gpu-long' has 1 node with 8 GPUs, 2 needed" in message, message
    assert "'big' has 1 node with 8 GPUs, 2 needed" in message, message
    assert "steps.train.gpus=8" in e.value.hint and "ragline.executor.partition" in e.value.hint


def test_a_gang_is_shaped_by_the_partition_it_fits(tmp_path, monkeypatch):
    """Item 2: with `gpu,gpu-long`, 16 GPUs were shaped by the largest node of any partition
    (8 GPUs, of which only one node exists) and refused ("do not fill whole nodes"), though
    'gpu' has four 4-GPU nodes. Now the job is shaped for the partition it fits: 4 x 4."""
    ex = _executor(tmp_path, monkeypatch, "gpu,gpu-long")
    ex.check_resources([_gang(16)])
    assert ex.gang_shape(_gang(16)) == (4, 4)
    assert ex.gang_shape(_gang(8)) == (1, 8)              # the fewest nodes: gpu-long's one
    (tmp_path / "one").mkdir()
    one = _executor(tmp_path / "one", monkeypatch, "gpu")     # one partition: as before
    with pytest.raises(ConfigError, match=r"steps.train.gpus: 6 GPUs do not fill whole nodes"):
        one.check_resources([_gang(6)])
