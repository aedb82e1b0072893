"""Ctrl-C or SIGTERM before the first step (while the plan is made, or a cluster executor
connects: ``ray.init`` can take a while) leaves the run recorded as interrupted, as it does
once steps run; before, the record stayed "running" (executor audit 43, a note of the Ray
fixes)."""

from __future__ import annotations

import json

import pytest

from orchestrator.runner import Runner, Terminated
from tests.conftest import rag


@pytest.mark.parametrize("raised, reason, code", [
    (KeyboardInterrupt, "interrupted (Ctrl-C)", 130), (Terminated, "terminated (SIGTERM)", 143)])
def test_an_interrupt_while_planning_is_recorded(toy, monkeypatch, raised, reason, code):
    def plan(self, force):
        raise raised()

    monkeypatch.setattr(Runner, "plan", plan)
    runs = toy / "runs"
    assert rag("run", str(toy / "conf" / "chain.yaml"), "--no-progress", runs=runs) == code
    (record,) = runs.glob("chain/2*/status.json")
    status = json.loads(record.read_text())
    assert (status["state"], status["reason"]) == ("interrupted", reason)
