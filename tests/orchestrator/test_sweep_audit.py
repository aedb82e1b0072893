"""Sweeps as a researcher runs them (``rag run … -m``): the closing table and lines, a member that
fails, a sweep stopped mid-way and rerun, a sweep of one value, and ``rag status`` of all these."""

from __future__ import annotations

import json
import shlex
import signal
import time

from orchestrator.cli.common import run_order
from tests.conftest import counts, rag, rag_process

WRONG = """\
ragline:
  imports: [tests.toy.stages]
steps:
  load:     {stage: toy_gen, n: 4}
  map:      {stage: toy_map, inputs: {numbers: load}, add: 1.0}
  wrong:    {stage: toy_wrong_rows, inputs: {numbers: map}, what: ok}
  evaluate: {stage: toy_sum, inputs: {numbers: wrong}}
"""

FROM_FILE = """\
ragline:
  imports: [tests.toy.stages]
sources:
  numbers: numbers.txt
steps:
  load:     {stage: toy_gen, inputs: {path: numbers}}
  map:      {stage: toy_map, inputs: {numbers: load}, add: 1.0}
  evaluate: {stage: toy_sum, inputs: {numbers: map}}
"""


def _words(text: str) -> str:
    return " ".join(text.split())


def _sweeps(runs, recipe: str = "chain") -> list:
    return sorted((runs / recipe).glob("*-sweep"), key=lambda p: run_order(p.name))


def test_the_closing_table_shows_the_swept_values_the_differing_metrics_and_the_records(toy, capsys):
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "-m", "steps.sft.add=1,2",
               "steps.dpo.add=0.1,0.2", "--no-progress", runs=runs) == 0
    (sweep,) = _sweeps(runs)
    captured = capsys.readouterr()
    out, err = _words(captured.out), _words(captured.err)
    assert f"sweep {sweep} ┏" in out
    assert "┃ member ┃ steps.sft.add ┃ steps.dpo.add ┃ state ┃ evaluate sum ┃" in out
    assert "│ member-0000 │ 1 │ 0.1 │ ok, 11 ran │ 40.800 │" in out
    assert "│ member-0003 │ 2 │ 0.2 │ ok, 2 ran │ 45.600 │" in out
    assert "evaluate count ┃" not in out          # 8 in every member: a line, not a column
    assert "same in every member: evaluate count 8" in out
    assert (f"sweep record: {sweep}/member-0000 … member-0003 (one run record per member); "
            f"rag status {sweep.name} --runs-dir {runs} shows this table again") in err
    assert "run record:" not in err                # it named the last member only


def test_status_of_a_sweep_shows_its_metrics_and_its_state(toy, capsys):
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "-m", "steps.dpo.add=0.1,0.2",
               "--no-progress", runs=runs) == 0
    (sweep,) = _sweeps(runs)
    capsys.readouterr()
    assert rag("status", sweep.name, runs=runs) == 0
    out = _words(capsys.readouterr().out)
    assert "│ member-0001 │ 0.2 │ ok, 2 ran │ 41.600 │" in out
    assert "sweep: ok (2 ok)" in out
    assert rag("status", sweep.name, "--json", runs=runs) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["state"] == "ok" and record["command"].startswith("rag run ")
    assert [round(m["metrics"]["evaluate"]["sum"], 3) for m in record["members"]] == [40.8, 41.6]


def test_a_failed_member_is_named_with_the_commands_that_resume_it(toy, monkeypatch, capsys):
    runs, recipe = toy / "runs", toy / "conf/wrong.yaml"
    recipe.write_text(WRONG)
    assert rag("run", str(recipe), "-m", "steps.wrong.what=ok,misnamed", "steps.map.add=1,2",
               "--no-progress", runs=runs) == 1
    (sweep,) = _sweeps(runs, "wrong")
    err = _words(capsys.readouterr().err)
    assert ("2 of 4 members failed: member-0002 (steps.wrong.what=misnamed steps.map.add=1), "
            "member-0003 (steps.wrong.what=misnamed steps.map.add=2)") in err
    assert ("rerun the same command to resume (finished steps of every member are reused): "
            f"rag run {recipe} -m steps.wrong.what=ok,misnamed steps.map.add=1,2 --no-progress "
            f"--runs-dir {runs}") in err
    alone = (f"rag run {recipe} steps.wrong.what=misnamed steps.map.add=1 --no-progress "
             f"--runs-dir {runs}")
    assert f"or rerun one failed member alone: {alone}" in err
    assert f"sweep record: {sweep}/member-0000 … member-0003" in err

    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag(*shlex.split(alone)[1:]) == 1       # that member alone: its upstream is cached
    assert counts(toy / "count.txt") == {}
    capsys.readouterr()
    assert rag("status", sweep.name, runs=runs) == 0
    out = _words(capsys.readouterr().out)
    assert "sweep: failed (2 ok, 2 failed); rerun the same command to resume: rag run" in out
    assert ("✗ member-0002: wrong: step 'wrong' output 'out' of stage 'toy_wrong_rows' "
            "(tests.toy.stages): no row has the column 'x'") in out
    assert f"log: {sweep}/member-0002/logs/wrong.log" in out
    assert f"one member's steps: rag status {sweep}/member-0002" in out


def test_a_source_missing_for_one_member_stops_the_sweep_before_any_member_runs(
        toy, monkeypatch, capsys):
    """A path swept to a file that does not exist used to stop its member hours into a sweep."""
    runs, recipe = toy / "runs", toy / "conf/file.yaml"
    recipe.write_text(FROM_FILE)
    (toy / "good.txt").write_text("1\n2\n")
    missing = toy / "missing.txt"
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", str(recipe), "-m", f"sources.numbers={toy / 'good.txt'},{missing}",
               "--no-progress", runs=runs) == 2
    assert counts(toy / "count.txt") == {}    # nothing ran
    err = _words(capsys.readouterr().err)
    assert (f"error: member-0001 (sources.numbers={missing}): source 'numbers': {missing} does "
            "not exist") in err
    assert ("hint: 1 of 2 members would stop before their steps run; fix the value (or leave it "
            "out of the sweep), then rerun: nothing ran") in err
    assert _sweeps(runs, "file") == []


def test_a_member_the_executor_refuses_stops_the_sweep_before_any_member_runs(toy, monkeypatch,
                                                                               capsys):
    """A member the executor refuses (a GPU on a machine without one) used to fail only when
    the sweep reached it; the pre-check makes the executor's own check for every member."""
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert rag("run", chain, "-m", "+steps.evaluate.gpus=0,1", "--no-progress", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert ("error: member-0001 (+steps.evaluate.gpus=1): steps.evaluate.gpus: 1 GPU(s) per "
            "shard asked for, but no CUDA GPU is visible on this machine") in err
    assert "1 of 2 members would stop before their steps run" in err
    assert counts(toy / "count.txt") == {}    # member-0000 did not run either
    assert _sweeps(runs, "chain") == []


def test_a_misnamed_until_in_a_sweep_stops_before_any_member(toy, capsys):
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "-m", "steps.sft.add=1,2", "--until", "sfx",
               runs=runs) == 2
    assert _words(capsys.readouterr().err).count("error: no step 'sfx' in chain.yaml") == 1
    assert _sweeps(runs) == []


def test_a_stopped_sweep_says_so_and_its_rerun_reuses_the_finished_members(toy, monkeypatch, capsys):
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    sweep_args = ["-m", "steps.dpo.add=0.1,0.2,0.3", "steps.dpo.sleep=3", "--no-progress"]
    proc = rag_process("run", chain, *sweep_args, "--runs-dir", str(runs))
    deadline = time.time() + 120
    while counts(toy / "count.txt").get("dpo:0", 0) < 2:    # member 1 is in its dpo
        assert time.time() < deadline and proc.poll() is None, "member 1 never reached dpo"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    assert ("sweep stopped in member-0001: 1 of 3 members finished; rerunning the same command "
            "reuses their steps (in a new sweep directory)") in _words(out)
    (sweep,) = _sweeps(runs)
    assert rag("status", sweep.name, runs=runs) == 0
    out = _words(capsys.readouterr().out)
    assert "│ member-0001 │ 0.2 │ interrupted: dpo │" in out
    assert "│ member-0002 │ 0.3 │ not started │" in out
    assert ("sweep: interrupted (1 ok, 1 interrupted, 1 not started); rerun the same command to "
            f"resume: rag run {chain} -m steps.dpo.add=0.1,0.2,0.3") in out

    assert rag("run", chain, *sweep_args, runs=runs) == 0
    ran = counts(toy / "count.txt")
    assert ran["retrieve:0"] == 1 and ran["sft:0"] == 1   # upstream once, across both runs
    assert ran["dpo:0"] == 4                               # member 0's never again
    assert len(_sweeps(runs)) == 2


def test_a_sweep_of_one_value_is_recorded_as_a_sweep(toy, capsys):
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "-m", "steps.dpo.add=0.7", "--no-progress",
               runs=runs) == 0
    (sweep,) = _sweeps(runs)
    assert [p.name for p in sweep.glob("member-*")] == ["member-0000"]
    captured = capsys.readouterr()
    assert f"sweep: 1 member -> {sweep}" in captured.err
    assert "│ member-0000 │ steps.dpo.add=0.7 │ ok, 11 ran │ 45.600 │ 8 │" in _words(captured.out)  # as written: sum, count


def test_two_sweeps_started_in_the_same_second_get_two_directories(toy, monkeypatch):
    runs = toy / "runs"
    monkeypatch.setattr(time, "strftime", lambda *a: "20260101-000000")
    for values in ("steps.dpo.add=0.1,0.2", "steps.dpo.add=0.3,0.4"):
        assert rag("run", str(toy / "conf/chain.yaml"), "-m", values, "--no-progress",
                   runs=runs) == 0
    assert [s.name for s in _sweeps(runs)] == ["20260101-000000-sweep", "20260101-000000-2-sweep"]
    for sweep, value in zip(_sweeps(runs), ("0.1", "0.3")):   # in the order they started
        assert json.loads((sweep / "sweep.json").read_text())["members"][0] == [
            f"steps.dpo.add={value}"]


def test_status_without_a_runs_directory_says_where_it_looked(toy, capsys):
    assert rag("status", runs=toy / "nowhere") == 2
    err = _words(capsys.readouterr().err)
    assert f"error: no runs directory {toy / 'nowhere'}/ (looked from" in err
    assert "pass the --runs-dir (or the recipe's ragline.runs_dir) that rag run used" in err


def test_a_shared_step_that_failed_is_not_computed_again_by_the_next_members(toy, monkeypatch,
                                                                            capsys):
    """sft is the same in both members (only dpo is swept): when it fails in member-0000, the
    second member reports that failure instead of spending the hours again; a rerun retries."""
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    monkeypatch.setenv("TOY_FAIL", "sft:0")
    assert rag("run", chain, "-m", "steps.dpo.add=0.1,0.2", "--no-progress", runs=runs) == 1
    assert counts(toy / "count.txt")["sft:0"] == 1
    err = _words(capsys.readouterr().err)
    assert ("- sft: failed earlier in this command (member-0000); not computed again (rerun the "
            "command to retry it)") in err
    assert "✗ sft failed: (as in member-0000) " in err
    assert "2 of 2 members failed" in err

    monkeypatch.delenv("TOY_FAIL")
    assert rag("run", chain, "-m", "steps.dpo.add=0.1,0.2", "--no-progress", runs=runs) == 0
    assert counts(toy / "count.txt")["sft:0"] == 2    # the rerun retried it, once
