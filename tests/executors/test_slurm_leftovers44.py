"""SLURM executor items left alone by session 43 (/work/logs/fix_slurm44.md), item 1: a job at its
time limit. SLURM sends SIGUSR2 (``--signal``) before the limit to every process of the job
step; the worker had no handler for it, so it died at once (no "stopped" line, its temporary
output folder left in the cache's tmp/ for ``rag gc``), and the run record did not name the
step. Now the worker is stopped like Ctrl-C (SIGTERM), and the step's failure names the step,
the job, the ``time`` setting and what to do.

Runs on the real single-node cluster of tests/engines/slurm.sh (``-m engines``). The warning
is moved to 50 s before a 1-minute limit with ``sbatch: {signal: USR2@50}`` (a real sbatch
flag, no fake), so the signal comes within about 10 to 40 s.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.executors.conftest import Conformance
from tests.executors.test_slurm_audit43 import SMALL


@pytest.mark.engines
def test_time_limit_stops_the_stage_and_removes_its_temporary_output(slurm_cluster, tmp_path):
    """Item 1: two array tasks that sleep past a 1-minute limit. Before: each worker was
    killed by SIGUSR2's default action, leaving cache/tmp/<key>.<pid>.* behind and no
    "stopped" line in its log; the failure did not name the step. Now each worker stops its
    stage (the "stopped" line), removes its temporary folder, and the record says which step
    and job hit which setting, with the hint to raise it."""
    xc = Conformance(tmp_path, "slurm")
    argv = [sys.executable, "-m", "orchestrator", "run", str(xc.recipe), "executor=slurm",
            *SMALL, "ragline.executor.cpus_per_task=1", "ragline.executor.time=1",
            "+ragline.executor.sbatch.signal=USR2@50", "steps.cpu_map.sleep=300",
            "steps.cpu_map.shards=2", "--until", "cpu_map", "--runs-dir", str(xc.runs)]
    started = time.time()
    # cwd outside the repository: python -m in the job would import ragline from its cwd
    r = subprocess.run(argv, cwd=xc.root, env=xc.env(), capture_output=True, text=True,
                       timeout=300)
    elapsed = time.time() - started
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    step = xc.status()["steps"]["cpu_map"]
    assert step["state"] == "failed" and len(step["jobs"]) == 2, step
    assert any(f"SLURM job {job} (step cpu_map) hit its time limit (ragline.executor.time=1)"
               in step["error"] for job in step["jobs"]), step
    assert "the stage was stopped and its temporary output removed" in step["error"], step
    assert "hint: raise ragline.executor.time" in out, out
    logs = sorted(Path(step["log"]).parent.glob("cpu_map.shard-*.log"))
    assert len(logs) == 2, logs
    for i, log in enumerate(logs):
        assert f"cpu_map[{i}/2]: stopped" in log.read_text(), log.read_text()
    left = sorted(p.name for p in (xc.cache / "tmp").glob("*")) if (xc.cache / "tmp").is_dir() \
        else []
    assert not left, f"temporary output left for rag gc: {left}"
    held = sorted(p.name for p in (xc.cache / "locks").glob("*.holder"))
    assert not held, f"locks still marked held: {held}"
    assert elapsed < 150, elapsed
