"""What the SIGTERM handler raised in one run is not read by a later one (review 43, finding
9): in a process that runs ``rag run`` twice, a Ctrl-C in the second run was reported as the
first run's SIGTERM (exit 143, not 130)."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import pytest


def test_a_later_ctrl_c_is_not_the_earlier_sigterm(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from orchestrator.executors import ray as rx
    from orchestrator.runner import Terminated
    from orchestrator.store import Store

    def terminate(signum, frame):
        raise Terminated()

    with pytest.raises(Terminated):   # the first run: SIGTERM outside any wait
        rx._keep_handler(terminate)(signal.SIGTERM, None)
    ex = rx.RayExecutor(Store(tmp_path / "cache"), {"address": "local"})
    monkeypatch.setattr(ex, "connect", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))
    task = SimpleNamespace(log=str(tmp_path / "logs" / "a.log"))
    with pytest.raises(KeyboardInterrupt) as caught:   # the second run: Ctrl-C
        ex.run(SimpleNamespace(name="a"), [task])
    assert not isinstance(caught.value, Terminated)
    assert rx._signal_exception(KeyboardInterrupt()).__class__ is KeyboardInterrupt
