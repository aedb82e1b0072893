"""``rag status`` of a running or interrupted run lists every step it will visit, those not
reached yet as ``pending`` (running) or ``not started`` (stopped), so progress can be read
("2 of 5"); before, the table had only the steps reached (CLI audit of session 42, item 9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO, counts, rag
from tests.orchestrator.test_resume_and_skips import TOY


def _states(runs, capsys) -> dict[str, str]:
    capsys.readouterr()
    assert rag("status", "--json", runs=runs) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    return {name: s["state"] for name, s in steps.items()}


def test_status_lists_the_steps_a_run_has_not_reached(toy, capsys):
    recipe, runs, count = toy / "conf" / "toy.yaml", toy / "runs", toy / "count.txt"
    recipe.write_text(TOY)
    command = [sys.executable, "-m", "orchestrator", "run", str(recipe), "--runs-dir", str(runs),
               "-j", "1", "steps.mul.sleep=4"]   # mul's shards one after the other, 4 s each
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOY_COUNT_FILE": str(count)}
    proc = subprocess.Popen(command, cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        end = time.time() + 120
        while "mul:0" not in counts(count):   # mul's first shard runs
            assert time.time() < end and proc.poll() is None, "mul never started"
            time.sleep(0.05)
        running = _states(runs, capsys)
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(running) == ["gen", "mul", "split", "total", "low"], running
    assert running["gen"] == "done" and running["mul"] == "running"
    assert [running[n] for n in ("split", "total", "low")] == ["pending"] * 3
    stopped = _states(runs, capsys)
    assert [stopped[n] for n in ("mul", "split", "total", "low")] == (
        ["interrupted"] + ["not started"] * 3), out
    assert rag("status", runs=runs) == 0
    table = capsys.readouterr().out
    assert "not started" in table and "low" in table
