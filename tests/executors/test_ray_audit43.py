"""Ray executor fixes of executor audit 43 (findings 4, 5 and 8): SIGTERM during a Ray step, a
task no node can hold, and the message of a Ray task that failed outside its worker.

Each case with a cluster runs a private one (``address=local``) in a separate process, so it
needs Ray but no cluster started by tests/engines/ray.sh; they are marked ``engines`` so that
they run in CI's engines phase (.ci/engines.sh), not in the default ``pytest`` run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace as S

import pytest

from tests.executors.conftest import REPO, Conformance
from tests.executors.test_slurm_audit43 import _jobs_while_running

# the conformance recipe on a private Ray cluster without GPUs, and without GPU steps
PRIVATE = ["ragline.executor.address=local", "ragline.executor.num_gpus=0",
           "steps.gpu_map.gpus=0", "steps.train.gpus=0"]


def _argv(xc: Conformance, *extra: str) -> list[str]:
    if not any(e.startswith("ragline.executor.num_cpus=") for e in extra):
        extra = ("ragline.executor.num_cpus=2", *extra)
    argv = xc.argv(*PRIVATE, *extra)
    argv.remove("ragline.executor.address=auto")   # EXECUTORS["ray"] attaches to ray.sh's head
    return argv


def _start(xc: Conformance, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(_argv(xc, *extra), cwd=REPO, env=xc.env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"rag run still running after {timeout:.0f}s:\n{out[-3000:]}")
    return out


def _in_subprocess(code: str, cwd, pythonpath: str = str(REPO)) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, text=True,
                       capture_output=True, timeout=300, env={**env, "PYTHONPATH": pythonpath})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.engines
def test_sigterm_during_a_ray_step_ends_as_terminated(tmp_path):
    """Executor audit 43, finding 4: SIGTERM to ``rag run ... executor=ray`` while a shard ran
    killed the driver outright (Ray's handler, installed by ray.init, replaced ragline's: a
    crash banner, exit 1, the record left "running"). It must end as with the local executor:
    "terminated (SIGTERM)", exit 143, the run interrupted, its Ray tasks (workers) stopped.
    Finding 7: its Ray task ids were in status.json only once the step ended."""
    pytest.importorskip("ray")
    xc = Conformance(tmp_path, "ray")
    proc = _start(xc, "steps.cpu_map.sleep=120")
    end = time.time() + 180
    while not any(t["step"] == "cpu_map" for t in xc.traces()):
        assert proc.poll() is None and time.time() < end, _finish(proc, 60)
        time.sleep(0.5)
    time.sleep(1)   # inside the wait (ray.wait) now
    # and the Ray task ids are in the record already, not only once the step ends (finding 7)
    assert len(_jobs_while_running(xc, proc)) == 4
    proc.send_signal(signal.SIGTERM)
    out = _finish(proc, 120)
    assert proc.returncode == 143, out
    assert "terminated (SIGTERM): finished steps are cached" in out, out
    assert "SIGTERM received" not in out, out   # Ray's crash banner
    status = xc.status()
    assert status["state"] == "interrupted", status
    assert status["reason"] == "terminated (SIGTERM)", status
    assert status["steps"]["cpu_map"]["state"] == "interrupted", status
    workers = {t["pid"] for t in xc.traces() if t["step"] == "cpu_map"}
    end = time.time() + 30
    while any(_alive(pid) for pid in workers) and time.time() < end:
        time.sleep(0.5)
    assert not any(_alive(pid) for pid in workers), workers


@pytest.mark.engines
def test_cpus_per_task_above_every_node_is_refused_before_any_step(tmp_path):
    """Executor audit 43, finding 5: ``cpus_per_task`` above every node's CPUs made Ray keep the
    shards pending forever, and ``rag run`` waited in silence (log_to_driver=False hides Ray's
    warning). It must be a ConfigError naming the setting and the largest node, before any
    step runs (exit 2)."""
    pytest.importorskip("ray")
    xc = Conformance(tmp_path, "ray")
    proc = _start(xc, "ragline.executor.num_cpus=1", "ragline.executor.cpus_per_task=2")
    out = _finish(proc, 120)
    assert proc.returncode == 2, out
    assert ("ragline.executor.cpus_per_task: 2 CPUs per Ray task asked for, but the largest Ray "
            "node has 1") in out, out
    assert "ragline.executor.cpus_per_task=1 or less" in out, out
    assert xc.traces() == [] and "source" not in out, out   # no step ran
    assert xc.status()["state"] == "failed"


def test_a_task_no_node_can_hold_is_refused_with_gpus_and_gangs(tmp_path):
    """Executor audit 43, finding 5: only GPUs per node were checked, so a GPU shard or a gang
    bundle (GPUs + cpus_per_task on one node) that no node can hold passed, and then waited
    forever. Nodes here: one with 4 CPUs and no GPU, one with 1 CPU and 2 GPUs."""
    pytest.importorskip("ray")
    from orchestrator.errors import ConfigError
    from orchestrator.executors.ray import RayExecutor
    from orchestrator.store import Store

    nodes = [{"Alive": True, "Resources": {"CPU": 4.0}},
             {"Alive": True, "Resources": {"CPU": 1.0, "GPU": 2.0}}]
    ex = RayExecutor(Store(tmp_path / "cache"), {"address": "local", "cpus_per_task": 2})
    ex.connect = lambda: S(nodes=lambda: nodes)     # no cluster: its nodes as Ray lists them
    ex.check_resources([S(name="map", gpus=0, shards=4)])
    with pytest.raises(ConfigError, match=r"steps.train: 2 GPU\(s\) and 2 CPU\(s\) "
                                          r"\(ragline.executor.cpus_per_task\) wanted on one node"):
        ex.check_resources([S(name="train", gpus=2, shards=1)])
    with pytest.raises(ConfigError, match=r"steps.embed: 1 GPU\(s\) and 2 CPU"):
        ex.check_resources([S(name="embed", gpus=1, shards=4)])
    ex.cpus_per_task = 8
    with pytest.raises(ConfigError, match="cpus_per_task: 8 CPUs per Ray task asked for, but the "
                                          "largest Ray node has 4"):
        ex.check_resources([S(name="map", gpus=0, shards=4)])


PRIVATE_EXECUTOR = """
    import logging, sys, time
    from pathlib import Path
    from types import SimpleNamespace as S
    import orchestrator.executors.ray as rx
    from orchestrator.store import Store
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(message)s")
    tmp = Path(sys.argv[1])
    ex = rx.RayExecutor(Store(tmp / "cache"), {"address": "local", "num_cpus": 1, "num_gpus": 0})
    ray = ex.connect()
    task = S(key="k0", log=str(tmp / "cpu_map.shard-00000.log"))
"""


def _with_executor(code: str, tmp_path) -> str:
    """``code`` after PRIVATE_EXECUTOR: ``ex`` on a private 1-CPU cluster, ``task`` a shard."""
    code = textwrap.dedent(PRIVATE_EXECUTOR) + textwrap.dedent(code)
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path, text=True,
                       capture_output=True, timeout=300, env={**env, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.mark.engines
def test_waiting_for_resources_is_said(tmp_path):
    """Executor audit 43, finding 5: while none of a step's Ray tasks had started, ``rag run``
    said nothing, however long (``ray.get`` without a timeout). Now a "waiting for resources"
    line is logged now and then, and the wait still ends when the tasks do. Here the only CPU
    is held by another task for 5 s."""
    pytest.importorskip("ray")
    out = _with_executor("""
        rx.POLL_S, rx.NOTE_AFTER_S, rx.NOTE_EVERY_S = 0.5, 1.0, 60.0

        def hold(started, seconds):
            Path(started).write_text("")
            time.sleep(seconds)

        def shard(log):        # stands for _run_shard: its worker opens the task's log
            Path(log).write_text("started")
            return 0

        blocker = ray.remote(num_cpus=1)(hold).remote(str(tmp / "held"), 5)
        end = time.time() + 120
        while not (tmp / "held").exists():   # the CPU is taken (a loaded machine: later)
            assert time.time() < end, "the blocking task did not start"
            time.sleep(0.2)
        refs = [ray.remote(num_cpus=1)(shard).remote(task.log)]
        ex._wait(refs, lambda: ex._not_started(S(name="cpu_map", gpus=0), [task]))
        print("done:", ray.get(refs), Path(task.log).read_text())
        """, tmp_path)
    assert ("cpu_map: waiting for resources: 1 task not started (each asks 1 CPU, 0 GPU; free: "
            "0/1 CPU, 0/0 GPU)") in out, out
    assert out.count("waiting for resources") == 1, out     # then every NOTE_EVERY_S
    assert "done: [0] started" in out, out


@pytest.mark.engines
def test_a_ray_task_error_is_its_cause(tmp_path):
    """Executor audit 43, finding 8: a Ray task that failed outside its worker (here: the node
    cannot open the task's log) was reported with the first line of Ray's text,
    ``ray::body() (pid=..., ip=...)`` in colour codes. It must be the exception itself."""
    pytest.importorskip("ray")
    out = _with_executor("""
        def body(log):         # stands for _run_shard failing before its worker starts
            from orchestrator.executors.launch import run_worker
            return run_worker(["true"], log, {}, None)

        Path(task.log).mkdir()
        ref = ray.remote(max_retries=0)(body).remote(task.log)
        ex.jobs[task.key] = ref.task_id().hex()
        print("message:", repr(ex._result(task, [ref], tmp / "x.task.json").message))
        """, tmp_path)
    message = next(line for line in out.splitlines() if line.startswith("message:"))
    assert "failed: IsADirectoryError: [Errno 21] Is a directory" in message, message
    assert "ray::" not in message and "\\x1b" not in message, message


@pytest.mark.engines
def test_a_node_that_cannot_import_ragline_is_a_config_error(tmp_path):
    """Executor audit 43, finding 8: a Ray node whose Python cannot import ragline stopped the
    run at the cache probe with "internal error: RayTaskError(RuntimeError): ray::_sees() ..."
    (exit 1, colour codes). It must be a ConfigError naming the node and the ImportError, with
    how to make ragline importable there. The workers here find a broken ``orchestrator``
    package first on PYTHONPATH; the driver imports the real one."""
    pytest.importorskip("ray")
    shadow = tmp_path / "shadow" / "orchestrator"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("a broken ragline install")\n')
    out = _in_subprocess(f"""
        import sys
        sys.path.remove({str(shadow.parent)!r})    # the driver's own import works
        from orchestrator.errors import ConfigError
        from orchestrator.executors.ray import RayExecutor
        from orchestrator.store import Store
        ex = RayExecutor(Store({str(tmp_path / 'cache')!r}), {{"address": "local",
                                                               "num_cpus": 1, "num_gpus": 0}})
        try:
            ex.connect()
        except ConfigError as e:
            print(e.message)
            print("hint:", e.hint)
        """, tmp_path, pythonpath=f"{shadow.parent}:{REPO}")
    assert "ragline.executor: Ray node " in out, out
    assert "cannot run ragline: ImportError: a broken ragline install" in out, out
    assert "hint: ragline and the recipe's stage modules must be importable on every Ray node" \
        in out, out
    assert "\x1b" not in out, out

