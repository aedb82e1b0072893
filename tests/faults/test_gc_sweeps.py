"""``rag gc --keep-runs N`` counts a sweep as one run: its members are kept or let go together.
It counted each member as a run, so after a sweep of more members than N, gc deleted the steps
only the older members computed (every model a 50-member sweep trained but ten)."""

from __future__ import annotations

import json

from tests.conftest import rag


def _statuses(runs):
    return [json.loads(p.read_text())
            for p in sorted(runs.glob("chain/*-sweep/member-*/status.json"))]


def test_gc_keeps_every_member_of_a_kept_sweep(toy, capsys):
    recipe, runs = toy / "conf" / "chain.yaml", toy / "runs"
    assert rag("run", str(recipe), "-m", "steps.evaluate.label=a,b,c,d", runs=runs) == 0
    assert rag("run", str(recipe), runs=runs) == 0       # one newer run besides the sweep
    assert rag("gc", "--keep-runs", "2", runs=runs) == 0
    capsys.readouterr()
    assert rag("run", str(recipe), "-m", "steps.evaluate.label=a,b,c,d", runs=runs) == 0
    members = _statuses(runs)[-4:]
    assert [m["steps"]["evaluate"]["state"] for m in members] == ["cached"] * 4
