"""A SIGTERM while ``sbatch`` runs. sbatch outlives its interrupted caller: it went on to submit
the step's job array after ``rag run`` had exited, so the jobs ran with nobody waiting for them
(their task files already removed: each failed) and nothing cancelled them. Now the run waits
for sbatch to return and cancels what it submitted.

Runs on the real single-node cluster of tests/engines/slurm.sh (``-m engines``). sbatch is made
slow with a wrapper first on ``PATH`` that sleeps, then runs the real one: a busy slurmctld
makes sbatch take seconds the same way. The signal comes while the wrapper sleeps.
"""

from __future__ import annotations

import datetime
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.executors.conftest import Conformance
from tests.executors.test_slurm_audit43 import SMALL

WRAPPER = """#!/bin/sh
touch {marks}/started
sleep 3
{sbatch} "$@"
rc=$?
touch {marks}/returned
exit $rc
"""


def _slow_sbatch(root: Path) -> Path:
    """A bin folder whose ``sbatch`` sleeps 3 s, then submits with the real one."""
    bin_dir, marks = root / "slow-bin", root / "marks"
    bin_dir.mkdir()
    marks.mkdir()
    wrapper = bin_dir / "sbatch"
    wrapper.write_text(WRAPPER.format(marks=marks, sbatch=shutil.which("sbatch")))
    wrapper.chmod(0o755)
    return bin_dir


def _jobs_of(root: Path, since: str) -> list[tuple[str, str]]:
    """(job id, state) of the jobs submitted from ``root`` since ``since``: sbatch's command
    line names the job file in the run record. An array cancelled while pending is never
    eligible, and sacct's time window leaves out such a job unless states are asked for."""
    r = subprocess.run(["sacct", "-n", "-X", "-P", "-a", "-s", STATES, "-S", since, "-E", "now",
                        "-o", "JobID,State,SubmitLine"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    rows = [line.split("|") for line in r.stdout.splitlines() if line.strip()]
    return [(row[0], row[1]) for row in rows if len(row) > 2 and str(root) in row[2]]


STATES = "PD,R,S,CD,CA,F,TO,NF,PR,OOM,BF,DL,RQ,RS,RV"


@pytest.mark.engines
def test_sigterm_during_sbatch_cancels_what_it_submitted(slurm_cluster, tmp_path):
    xc = Conformance(tmp_path, "slurm")
    bin_dir = _slow_sbatch(tmp_path)
    env = xc.env()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    since = (datetime.datetime.now() - datetime.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S")
    argv = [sys.executable, "-m", "orchestrator", "run", str(xc.recipe), "executor=slurm",
            *SMALL, "ragline.executor.cpus_per_task=1", "ragline.executor.time=5",
            "steps.cpu_map.sleep=60", "steps.cpu_map.shards=2", "--until", "cpu_map",
            "--runs-dir", str(xc.runs)]
    proc = subprocess.Popen(argv, cwd=xc.root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    started = tmp_path / "marks" / "started"
    deadline = time.time() + 120
    while not started.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert started.exists(), proc.communicate(timeout=60)[0]
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, out
    assert "terminated (SIGTERM)" in out, out
    assert (tmp_path / "marks" / "returned").exists(), f"rag exited before sbatch returned:\n{out}"
    jobs: list[tuple[str, str]] = []
    for _ in range(60):   # sacct shows a cancelled array's tasks within a few seconds
        jobs = _jobs_of(tmp_path, since)
        if jobs and all(state.startswith("CANCELLED") for _, state in jobs):
            break
        time.sleep(1)
    assert jobs, "sbatch submitted no job (the test did not exercise the race)"
    assert all(state.startswith("CANCELLED") for _, state in jobs), jobs
    assert xc.status()["steps"]["cpu_map"]["state"] == "interrupted", xc.status()
