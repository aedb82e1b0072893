"""SLURM executor defects of executor audit 43 (findings 1, 2, 3, 6, 7; /work/logs/audit_exec43.md):
a job refused by sbatch, a job that dies outside the stage, a job that can never start, a typo in
``time``, and job ids that reached the run record only when the step ended.

The ``engines`` cases run the conformance recipe (tests/executors/conf/conformance.yaml) through
the CLI on the real single-node cluster of tests/engines/slurm.sh (2 CPUs, 2 fake GPUs, accounting
on); the others need no cluster (fake ``sinfo``/``sbatch`` on PATH, or ``cluster: local``).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator.errors import ConfigError
from orchestrator.store import Store
from tests.executors.conftest import REPO, Conformance

# what every SLURM run here needs on the 2-CPU test cluster, and no GPU step
SMALL = ["ragline.executor.mem_gb=1", "ragline.executor.heartbeat_s=8",
         "steps.gpu_map.gpus=0", "steps.train.gpus=0"]


def _rag(xc: Conformance, command: str, *args: str, timeout: float = 300) -> tuple[int, str]:
    """``rag COMMAND`` on the conformance recipe with executor=slurm and ``args`` (not the
    conformance suite's own SLURM settings: these cases choose them)."""
    argv = [sys.executable, "-m", "orchestrator", command, str(xc.recipe), "executor=slurm",
            f"trace={xc.trace}", *args]
    argv += ["--runs-dir", str(xc.runs)] if command == "run" else []
    r = subprocess.run(argv, cwd=REPO, env=xc.env(), capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def _fake_slurm(tmp_path: Path, monkeypatch, sinfo: str) -> None:
    """``sinfo`` printing ``sinfo`` whatever it is asked, ``sbatch`` that fails, on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"sinfo": f"#!/bin/sh\nprintf '%s\\n' '{sinfo}'\n",
                       "sbatch": "#!/bin/sh\nexit 1\n"}.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


# -- finding 2: sbatch's refusals ---------------------------------------------------------------

def test_partition_limits_refused_before_submission(tmp_path, monkeypatch):
    """Executor audit 43, finding 2 (and 3's common case): check_resources asked sinfo only for
    GPU steps, so a CPU step with more CPUs, memory or time than the partition allows reached
    sbatch ("internal error", exit 1) or pended forever. Now each is a ConfigError naming the
    setting and what the partition has."""
    from orchestrator.executors.slurm import SlurmExecutor

    _fake_slurm(tmp_path, monkeypatch, "n1|gpu:2|short*|4|8192|1:00:00")
    store, step = Store(tmp_path / "c"), SimpleNamespace(name="cpu_map", gpus=0, shards=4)

    def check(**cfg):
        SlurmExecutor(store, {"name": "slurm", "time": 30, **cfg}).check_resources([step])

    check(cpus_per_task=4, mem_gb=8)                        # fits
    for cfg, pattern in (({"cpus_per_task": 8}, r"cpus_per_task: 8 CPUs .* at most 4"),
                         ({"mem_gb": 16}, r"mem_gb: 16 GB .* at most 8 GB"),
                         ({"time": "2:00:00"}, r"time: 120 minutes .* at most 60 \(its MaxTime\)"),
                         ({"partition": "gpu"}, r"partition: no partition 'gpu' .*have: short")):
        with pytest.raises(ConfigError, match=pattern) as e:
            check(**cfg)
        assert e.value.hint
    SlurmExecutor(store, {"name": "slurm", "cpus_per_task": 64}).check_resources([])  # none sent


@pytest.mark.engines
def test_sbatch_refusals_are_bad_input_not_internal_errors(slurm_cluster, tmp_path):
    """Executor audit 43, finding 2: the shipped cpus_per_task 8 on the 2-CPU cluster, and a
    partition typo, were "internal error: FailedJobError" (exit 1) after `source` had run, and
    `rag plan --check` passed them; a refusal check_resources cannot foresee (a constraint no
    node has) aborted the run with the step "interrupted" and gpu_map never tried. Now the first
    two stop the run and the plan before anything runs (exit 2), and a refusal at submission
    fails its step as bad input while independent steps still run (exit 2)."""
    xc = Conformance(tmp_path, "slurm")
    code, out = _rag(xc, "run", *SMALL)                     # shipped defaults: 8 CPUs per job
    assert code == 2 and "ragline.executor.cpus_per_task: 8 CPUs per job" in out, out
    assert "at most 2" in out and "internal error" not in out
    assert not list(xc.cache.glob("objects/*/*")), "a step ran"   # before: source had
    code, out = _rag(xc, "run", *SMALL, "ragline.executor.cpus_per_task=1",
                     "ragline.executor.partition=nope")
    assert code == 2 and "no partition 'nope' on this cluster (have: debug)" in out, out
    code, out = _rag(xc, "plan", "ragline.executor.cpus_per_task=1",
                     "ragline.executor.partition=nope", "--check")
    assert code == 2 and "no partition 'nope'" in out, out

    code, out = _rag(xc, "run", *SMALL, "ragline.executor.cpus_per_task=1",
                     "ragline.executor.time=10", "ragline.executor.constraint=nope")
    assert code == 2 and "sbatch refused the job: " in out and "internal error" not in out, out
    steps = xc.status()["steps"]
    assert steps["source"]["state"] == "done"
    assert steps["cpu_map"]["state"] == steps["gpu_map"]["state"] == "failed", steps
    assert "feature" in steps["gpu_map"]["error"].lower(), steps["gpu_map"]   # tried, refused


# -- finding 1: a job that dies outside the stage ----------------------------------------------

@pytest.mark.engines
def test_job_failing_outside_the_stage_names_its_state_and_stderr(slurm_cluster, tmp_path):
    """Executor audit 43, finding 1: a job whose setup line failed, whose node could not import
    ragline, or that hit its time limit was reported as "SLURM job 453_0 failed: ------" (or a
    path to a .out file), with a `log:` that did not exist, and a time=2 job was stopped after
    27 s by submitit's SIGUSR2 90 s before the limit. Now the message gives the job's state and
    exit code and the last line of its stderr, names the time limit with its setting, and the
    log exists (submitit's .err when the task never wrote its own)."""
    shadow = tmp_path / "shadow" / "orchestrator"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('node has a broken ragline install')\n")
    cases = {"setup": ["ragline.executor.setup=[exit 3]", "--until", "source"],
             "import": [f"ragline.executor.setup=['export PYTHONPATH={shadow.parent}']",
                        "--until", "source"],
             "time": ["ragline.executor.time=1", "steps.cpu_map.sleep=300",
                      "steps.cpu_map.shards=1", "--until", "cpu_map"]}
    procs = {}
    for name, extra in cases.items():   # at once: each waits on the cluster, not on the CPU
        xc = Conformance(tmp_path / name, "slurm")
        argv = [sys.executable, "-m", "orchestrator", "run", str(xc.recipe), "executor=slurm",
                *SMALL, "ragline.executor.cpus_per_task=1", "ragline.executor.isolate=always",
                *(["ragline.executor.time=10"] if name != "time" else []), *extra,
                "--runs-dir", str(xc.runs)]
        # cwd outside the repository: python -m in the job would import ragline from its cwd
        procs[name] = (xc, subprocess.Popen(argv, cwd=xc.root, env=xc.env(), text=True,
                                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    started = time.time()
    out = {name: p.communicate(timeout=400)[0] for name, (_, p) in procs.items()}
    elapsed = time.time() - started
    for name, (xc, p) in procs.items():
        assert p.returncode == 1, out[name]
        failed = [s for s in xc.status()["steps"].values() if s.get("state") == "failed"]
        assert len(failed) == 1 and Path(failed[0]["log"]).is_file(), (name, failed, out[name])
    assert "FAILED, exit code 3 before the worker reported" in out["setup"], out["setup"]
    assert "ImportError: node has a broken ragline install" in out["import"], out["import"]
    err = [s for s in procs["import"][0].status()["steps"].values() if s.get("error")][0]
    assert err["log"].endswith("_log.err"), err
    assert "hit its time limit (ragline.executor.time=1)" in out["time"], out["time"]
    assert elapsed < 300, elapsed


# -- finding 6: time and mem_gb checked up front -----------------------------------------------

def test_time_typo_refused_before_any_step_runs(tmp_path):
    """Executor audit 43, finding 6: time=8h passed `rag plan --check` and became "internal
    error: ValueError: invalid literal for int()" once the first sharded step was submitted,
    after the light steps had run. Now the executor block is refused up front (exit 2), naming
    ragline.executor.time and the forms it takes; mem_gb must be a number above 0."""
    from orchestrator.executors import executor_settings

    xc = Conformance(tmp_path, "slurm")
    code, out = _rag(xc, "plan", "ragline.executor.time=8h", "--check")
    assert code == 2 and "ragline.executor.time: '8h' is not minutes" in out, out
    code, out = _rag(xc, "run", "ragline.executor.cluster=local", "ragline.executor.time=8h")
    assert code == 2 and "HH:MM:SS or D-HH:MM:SS" in out and "internal error" not in out, out
    assert not list(xc.cache.glob("objects/*/*")), "a step ran"
    with pytest.raises(ConfigError, match=r"ragline.executor.mem_gb: expected a number of GB"):
        executor_settings({"executor": {"name": "slurm", "mem_gb": "8G"}})
    for good in (90, "1-00:00:00", "4:00:00", "45:00"):
        executor_settings({"executor": {"name": "slurm", "time": good}})


# -- finding 7: job ids in the record while the step runs --------------------------------------

def _jobs_while_running(xc: Conformance, proc, limit: float = 90) -> list[str]:
    """The cpu_map job ids status.json holds while the step is still running."""
    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None:
        for path in xc.runs.glob("conformance/2*/status.json"):
            try:
                step = json.loads(path.read_text())["steps"].get("cpu_map", {})
            except (OSError, ValueError):
                continue
            if step.get("state") == "running" and step.get("jobs"):
                return step["jobs"]
        time.sleep(0.5)
    return []


@pytest.mark.engines
def test_job_ids_are_recorded_as_soon_as_submitted(slurm_cluster, tmp_path):
    """Executor audit 43, finding 7: status.json got a step's job ids only when the step
    ended, so while it ran, and after `rag run` was SIGKILLed, the record named no job to
    scancel (all runs share the job name ragline-<step>). Now they are saved at submission."""
    xc = Conformance(tmp_path, "slurm")
    argv = [sys.executable, "-m", "orchestrator", "run", str(xc.recipe), "executor=slurm", *SMALL,
            "ragline.executor.cpus_per_task=1", "ragline.executor.time=10",
            "steps.cpu_map.sleep=60", "--until", "cpu_map", "--runs-dir", str(xc.runs)]
    proc = subprocess.Popen(argv, cwd=xc.root, env=xc.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        jobs = _jobs_while_running(xc, proc)
        assert len(jobs) == 4 and len({j.split("_")[0] for j in jobs}) == 1, jobs
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert xc.status()["steps"]["cpu_map"]["jobs"] == jobs   # for the user's scancel
        queued = subprocess.run(["squeue", "-h", "-j", jobs[0].split("_")[0], "-o", "%i"],
                                capture_output=True, text=True, timeout=30).stdout
        assert queued.strip(), "the jobs outlive the killed driver until the heartbeat is stale"
    finally:
        if proc.poll() is None:
            proc.kill()
        _cancel_jobs_from(xc.root)


def _cancel_jobs_from(folder: Path) -> None:
    """scancel the jobs submitted from ``folder`` (squeue's work dir), this test's only."""
    out = subprocess.run(["squeue", "-h", "-o", "%A|%Z"], capture_output=True, text=True,
                         timeout=30).stdout
    jobs = [line.split("|")[0] for line in out.splitlines()
            if line.partition("|")[2].startswith(str(folder))]
    if jobs:
        subprocess.run(["scancel", *jobs], timeout=30)


# -- finding 3: a job SLURM will never start ---------------------------------------------------

def test_job_pending_for_a_reason_slurm_never_clears_fails_the_step(tmp_path, monkeypatch):
    """Executor audit 43, finding 3: with EnforcePartLimits=NO, a job over the partition's
    MaxTime stays PENDING (PartitionTimeLimit) forever, and `rag run` waited on it silently.
    Now the wait asks squeue every POLL_S: such a reason fails the step, naming the setting;
    another (Resources) is logged as "waiting: N SLURM job(s) pending"."""
    from orchestrator.executors import slurm

    _fake_slurm(tmp_path, monkeypatch, "n1|(null)|debug*|2|4096|infinite")
    monkeypatch.setattr(slurm, "POLL_S", 0)
    monkeypatch.setattr(slurm, "NOTE_S", 0)
    monkeypatch.setattr(slurm.time, "sleep", lambda s: None)
    ex = slurm.SlurmExecutor(Store(tmp_path / "c"), {"name": "slurm", "time": 1440})
    job = SimpleNamespace(job_id="7_0", done=lambda: False)
    ex._active = [job]
    answers = [["7_0|PENDING|Resources"], ["7_0|PENDING|PartitionTimeLimit"]]
    monkeypatch.setattr(slurm, "squeue_lines", lambda ids: answers.pop(0))
    warned = []
    monkeypatch.setattr(slurm.log, "warning", lambda *a: warned.append(a[0] % a[1:]))
    failure = ex._wait(SimpleNamespace(name="cpu_map"))
    assert warned == ["cpu_map: waiting: 1 SLURM job(s) pending (Resources)"]
    assert failure.bad_input and "pending for PartitionTimeLimit" in failure.message
    assert "ragline.executor.time=1440" in failure.message, failure
