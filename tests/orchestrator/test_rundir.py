"""Run records: a record whose process is gone reads as interrupted; interrupt() and latest."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from orchestrator.rundir import RunDir, effective_state


def test_running_record_of_a_dead_process_reads_interrupted():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    here = socket.gethostname()
    assert effective_state({"state": "running", "pid": proc.pid, "host": here}) == "interrupted"
    mine = {"state": "running", "pid": os.getpid(), "host": here, "started": time.time()}
    assert effective_state(mine) == "running"
    # a live pid that started after the run did is someone else's (the number was reused)
    assert effective_state({**mine, "started": time.time() - 10 ** 7}) == "interrupted"
    assert effective_state({"state": "running", "pid": proc.pid, "host": "elsewhere"}) == "running"
    assert effective_state({"state": "ok", "pid": proc.pid, "host": here}) == "ok"


def test_interrupt_and_latest_set_at_start(tmp_path):
    runs = tmp_path / "runs"
    run = RunDir(RunDir.new_path(runs, tmp_path / "r.yaml"), tmp_path / "r.yaml", [], "rag run r")
    assert (runs / "latest").resolve() == run.path  # a run killed now is still found
    run.set_step("a", state="running")
    run.interrupt("terminated (SIGTERM)")
    status = json.loads((run.path / "status.json").read_text())
    assert status["state"] == "interrupted" and status["steps"]["a"]["state"] == "interrupted"
    assert status["reason"] == "terminated (SIGTERM)" and status["pid"] == os.getpid()


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    recipe = tmp_path / "r.yaml"
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: RunDir.new_path(tmp_path / "runs", recipe), range(16)))
    assert len(set(paths)) == 16 and all(p.is_dir() for p in paths)
