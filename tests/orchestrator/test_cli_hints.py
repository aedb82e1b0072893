"""The commands the CLI suggests run as written (with the --runs-dir the user gave), a run's
record reads the same from any directory, and plain `rag status` after a sweep is the sweep's."""

from __future__ import annotations

import json
import os
import re
import shlex

from tests.conftest import rag


def _words(capsys) -> str:
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())


def test_a_sweeps_closing_hint_runs_as_written_and_plain_status_shows_the_sweep(toy, capsys,
                                                                               monkeypatch):
    """Before: the hint left out --runs-dir ("not found under runs/", exit 2), and `rag status`
    after a sweep whose member failed said `state: ok` (its last member's)."""
    runs = toy / "my runs"
    monkeypatch.setenv("TOY_FAIL", "sft:0")
    assert rag("run", str(toy / "conf/chain.yaml"), "-m", "steps.sft.add=1,2", "--no-progress",
               runs=runs) != 0
    hint = re.search(r"(rag status \S+-sweep --runs-dir '[^']+') shows this table again",
                     _words(capsys))
    assert hint, "no hint with --runs-dir"
    assert rag(*shlex.split(hint.group(1))[1:]) == 0
    assert rag("status", runs=runs) == 0
    out = _words(capsys)
    assert "sweep: failed" in out and "state: ok" not in out


def test_a_runs_record_names_absolute_paths(toy):
    """Before: status.json held the run and each step's log relative to the directory `rag
    run` was started in, wrong from anywhere else (and for a worker started elsewhere)."""
    runs = toy / "runs"
    relative = os.path.relpath(runs)            # from the repository, the toy fixture's cwd
    assert rag("run", str(toy / "conf/chain.yaml"), "--no-progress", "--runs-dir", relative) == 0
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["run"].startswith(str(toy))
    logs = [s["log"] for s in status["steps"].values()]
    assert logs and all(str(log).startswith(str(toy)) for log in logs)


def test_a_failed_step_without_a_log_prints_no_empty_log_line(toy, capsys):
    run = toy / "runs" / "chain" / "20260101-000000"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps(
        {"run": str(run), "state": "failed", "command": "rag run conf/chain.yaml",
         "steps": {"mul": {"state": "failed", "error": "its input is empty", "log": ""}}}))
    assert rag("status", runs=toy / "runs") == 0
    out = _words(capsys)
    assert "✗ mul: its input is empty" in out and "log:" not in out


def test_small_cli_edges(toy, capsys):
    """Before: `rag status --run X` was an unknown argument (show and verify spell it so), a
    runs directory that is a file was 'no runs directory', `-m` without an override ran a sweep
    of one empty member, and a failed single run said '1 run(s) failed'."""
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "--no-progress", runs=runs) == 0
    name = json.loads((runs / "latest" / "status.json").read_text())["run"]
    assert rag("status", "--run", name, runs=runs) == 0
    capsys.readouterr()
    (toy / "afile").write_text("")
    assert rag("status", "--runs-dir", str(toy / "afile")) == 2
    assert f"runs directory {toy / 'afile'} is a file, not a directory" in _words(capsys)
    assert rag("run", str(toy / "conf/chain.yaml"), "-m", runs=runs) == 2
    assert "-m (a sweep) needs at least one override with comma-separated values" in \
        _words(capsys)


def test_status_of_a_forced_sharded_step_counts_only_what_it_committed(toy, capsys):
    """Before: a step under --force showed '4/4 done' before any shard finished (the entries it
    was replacing counted), and a failed sharded step showed no count."""
    import time

    from orchestrator.store import ENTRY, Store

    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "--until", "retrieve", runs=runs) == 0
    path = next(runs.glob("chain/*/status.json"))
    status = json.loads(path.read_text())
    step = status["steps"]["retrieve"]
    step.update(state="running", started=time.time() + 5, kept=[step["keys"][3]])
    status["state"], status["pid"] = "failed", 2 ** 22 + 7
    path.write_text(json.dumps(status))
    marker = Store.for_runs(runs).entry_path(step["keys"][0]) / ENTRY
    later = time.time() + 10
    os.utime(marker, (later, later))                  # shard 0 recommitted since it started
    capsys.readouterr()
    assert rag("status", "--json", runs=runs) == 0
    assert json.loads(capsys.readouterr().out)["steps"]["retrieve"]["shards_done"] == 2
    step["state"] = "failed"
    path.write_text(json.dumps(status))
    assert rag("status", "--json", runs=runs) == 0
    assert json.loads(capsys.readouterr().out)["steps"]["retrieve"]["shards_done"] == 2
