"""A signal while ``ray.init`` starts a private cluster ends the run as any other signal does.

Before: ``ray.init`` installs Ray's own SIGTERM handlers first thing (``sys.exit(15)``, then
one that stops the node's processes and exits 1), so a SIGTERM in the seconds a local cluster
took to start ended ``rag run`` with exit 15 and no word. And the agents the raylet had
started (dashboard, runtime env) outlived the run by 60-90 s. Marked ``engines`` (it starts a
private Ray cluster: CI's engines phase, .ci/engines.sh).
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.executors.conftest import REPO, Conformance
from tests.executors.test_ray_audit43 import _argv, _finish


def _cluster_starting(proc) -> bool:
    """The run has started the cluster's first process (gcs_server), not yet its raylet: inside
    ``ray.init``."""
    import psutil

    try:
        names = [c.name() for c in psutil.Process(proc.pid).children(recursive=True)]
    except psutil.Error:
        return False
    return "gcs_server" in names and "raylet" not in names


@pytest.mark.engines
@pytest.mark.parametrize("signum, code, words", [
    (signal.SIGTERM, 143, "terminated (SIGTERM): finished steps are cached"),
    (signal.SIGINT, 130, "interrupted: finished steps are cached")])
def test_a_signal_while_the_ray_cluster_starts(tmp_path, signum, code, words):
    pytest.importorskip("ray")
    xc = Conformance(tmp_path, "ray")
    # SIGINT at its default: a pytest started as a background job leaves it ignored
    proc = subprocess.Popen(_argv(xc), cwd=REPO, env=xc.env(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    end = time.time() + 120
    while not _cluster_starting(proc):
        assert proc.poll() is None and time.time() < end, _finish(proc, 60)
        time.sleep(0.02)
    proc.send_signal(signum)
    out = _finish(proc, 120)
    assert proc.returncode == code, out
    assert words in out, out
    assert "Traceback" not in out, out
    if signum == signal.SIGTERM:
        assert "SIGTERM while the Ray cluster was starting: stopped it" in " ".join(out.split())
    status = xc.status()
    assert status["state"] == "interrupted", status
    assert xc.traces() == []   # no step had started


def _agents_started(proc) -> list:
    """The run's processes once its raylet has started an agent and before any Ray worker
    (``ray::IDLE``): still inside ``ray.init``; [] before that."""
    import psutil

    try:
        procs = psutil.Process(proc.pid).children(recursive=True)
        names = [p.name() for p in procs]
    except psutil.Error:
        return []
    agent = any(n.startswith("ray::") and "Agent" in n for n in names)
    if "raylet" in names and agent and not any(n.startswith("ray::IDLE") for n in names):
        return procs
    return []


@pytest.mark.engines
def test_a_sigterm_while_ray_starts_leaves_no_process_behind(tmp_path):
    """The dashboard and runtime-env agents lived on, orphaned, for a minute or more."""
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("ray")
    xc = Conformance(tmp_path, "ray")
    proc = subprocess.Popen(_argv(xc), cwd=REPO, env=xc.env(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    end = time.time() + 120
    while not (started := _agents_started(proc)):
        assert proc.poll() is None and time.time() < end, _finish(proc, 60)
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out = _finish(proc, 120)
    assert proc.returncode == 143, out
    _, left = psutil.wait_procs(started, timeout=10)
    assert not left, [(p.pid, p.name()) for p in left if p.is_running()]
