"""orchestrator/worker.py: a worker whose runner died before it could ask to die with it exits."""

from __future__ import annotations

import os

from orchestrator.worker import driver_gone


def test_driver_gone_compares_the_parent_with_the_runner_that_started_us(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("RAGLINE_DRIVER_PID", raising=False)
    assert driver_gone() is False                      # not started by the local executor
    monkeypatch.setenv("RAGLINE_DRIVER_PID", str(os.getppid()))
    assert driver_gone() is False                      # our parent is the runner
    monkeypatch.setenv("RAGLINE_DRIVER_PID", str(os.getppid() + 100000))
    assert driver_gone() is True                       # re-parented: the runner is gone
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert driver_gone() is False                      # a torchrun rank: torchrun is the parent
