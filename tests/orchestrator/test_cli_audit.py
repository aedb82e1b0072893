"""The command line as a first-time user meets it: a mistyped step, run or runs directory, a
sweep named where one run is meant, Ctrl-C in a command that runs no step, and help text that
keeps its promises. Each test failed before its fix."""

from __future__ import annotations

import argparse
import json
import shlex

import pytest

from orchestrator.cli import build_parser
from orchestrator.cli import show as show_cli
from tests.conftest import REPO, rag


def _words(text: str) -> str:
    return " ".join(text.split())


def _err(capsys) -> str:
    captured = capsys.readouterr()
    return _words(captured.out + captured.err)


def _fake_run(path, state="ok", command="rag run conf/chain.yaml", steps=None) -> None:
    path.mkdir(parents=True)
    (path / "status.json").write_text(json.dumps(
        {"run": str(path), "state": state, "command": command, "steps": steps or {}}))


def test_a_misnamed_only_leaves_no_run_record(toy, capsys):
    """Before: `rag run R --only nope` wrote a failed run record with no step, which became
    `latest` (so `rag status` showed it instead of the last real run) and counted as one of the
    runs `rag gc --keep-runs` keeps."""
    runs = toy / "runs"
    for flag in ("--only", "--until", "--from", "--force"):
        assert rag("run", str(toy / "conf/chain.yaml"), flag, "evalute", runs=runs) == 2
        assert "error: no step 'evalute' in chain.yaml (did you mean 'evaluate'?)" in _err(capsys)
    assert list(runs.glob("*/*/status.json")) == []
    assert not (runs / "latest").exists()


def test_show_and_verify_of_a_sweep_name_its_members(toy, capsys):
    """Before: "run '…-sweep' not found", with a hint listing that very sweep as the newest."""
    runs = toy / "runs"
    sweep = runs / "chain" / "20260101-000000-sweep"
    for i in range(2):
        _fake_run(sweep / f"member-000{i}")
    for args in (("show", "evaluate", "--run", sweep.name, "--runs-dir", str(runs)),
                 ("verify", sweep.name, "--runs-dir", str(runs))):
        assert rag(*args) == 2
        err = _err(capsys)
        assert (f"error: '{sweep.name}' is a sweep of 2 run(s), not one run: name one of its "
                f"members ({sweep.name}/member-0000 … member-0001)") in err
        # with the --runs-dir given: the hint runs as written
        assert f"hint: rag status {sweep.name} --runs-dir {runs} lists the members" in err
    assert rag("verify", f"{sweep.name}/member-0001", "--runs-dir", str(runs)) == 0  # as said


def test_a_member_name_that_several_sweeps_hold_is_refused_not_guessed(toy, capsys):
    """Before: `--run member-0000` took the newest sweep's member without saying which, and
    SWEEP/member-0005 of a 2-member sweep was 'not found' with no word of its members."""
    runs = toy / "runs"
    for stamp in ("20260101-000000", "20260102-000000"):
        for i in range(2):
            _fake_run(runs / "chain" / f"{stamp}-sweep" / f"member-000{i}")
    assert rag("verify", "member-0000", "--runs-dir", str(runs)) == 2
    assert (f"error: 'member-0000' names 2 runs under {runs}/: chain/20260101-000000-sweep/"
            "member-0000, chain/20260102-000000-sweep/member-0000 hint: name one by its path "
            f"below {runs}/, e.g. chain/20260102-000000-sweep/member-0000") in _err(capsys)
    assert rag("verify", "20260102-000000-sweep/member-0005", "--runs-dir", str(runs)) == 2
    assert ("error: sweep 20260102-000000-sweep has no run member-0005; its members: member-0000 "
            f"… member-0001 hint: rag status 20260102-000000-sweep --runs-dir {runs} lists them"
            ) in _err(capsys)


@pytest.mark.parametrize("command", [("show", "load"), ("verify",), ("status",)])
def test_without_a_runs_directory_each_command_says_where_it_looked(command, toy, capsys):
    """Before: `rag show` / `rag verify` said "no run found under nowhere/" (only `rag status`
    said that the runs directory itself is missing, and from where it looked)."""
    assert rag(*command, "--runs-dir", str(toy / "nowhere")) == 2
    err = _err(capsys)
    assert f"error: no runs directory {toy / 'nowhere'}/ (looked from" in err
    assert "pass the --runs-dir (or the recipe's ragline.runs_dir) that rag run used" in err


def test_show_refuses_a_negative_row_count(toy, capsys):
    """Before: -n -1 was taken, and printed no rows without a word."""
    assert rag("show", "load", "-n", "-1", runs=toy / "runs") == 2
    assert "argument -n/--rows: must be >= 0, got -1" in _err(capsys)


def _show_examples() -> list[list[str]]:
    """The arguments of each `rag show` line of its --help examples."""
    return [shlex.split(line.split("#")[0])[2:] for line in show_cli.EXAMPLES.splitlines()
            if line.strip().startswith("rag show ")]


def test_show_help_examples_each_name_one_artifact_of_the_demo(tmp_path, monkeypatch, capsys):
    """Before: `rag show evaluate --run …` was an example, but `evaluate` has two outputs
    (metrics, per_question) in every shipped recipe, so the example stopped with "several
    outputs; name one". Each example is shown here from a run holding every output of the
    demo's DAG (as empty directory artifacts)."""
    from orchestrator.cli.common import load

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    args = argparse.Namespace(recipe="conf/dynamicrag_demo.yaml", overrides=[], multirun=False,
                              runs_dir=str(runs), command="plan")
    _, _, dags = load(args)
    run = runs / "dynamicrag_demo" / "20261121-101500"   # the name the --run example gives
    _fake_run(run)
    for name, step in dags[0].steps.items():
        for out in step.stage.outputs:
            link = run / "artifacts" / f"{name}.{out}"
            link.mkdir(parents=True)
            (link / "_manifest.json").write_text(json.dumps({"kind": "dir", "type": "T"}))
    examples = _show_examples()
    assert len(examples) >= 5
    for words in examples:
        assert rag("show", *words, "--runs-dir", str(runs)) == 0, (words, _err(capsys))


def test_several_outputs_hint_the_command_that_shows_one(toy, capsys):
    runs = toy / "runs"
    run = runs / "chain" / "20260101-000000"
    _fake_run(run)
    (run / "artifacts").mkdir()
    for out in ("low", "high"):
        (run / "artifacts" / f"split.{out}").mkdir()
    assert rag("show", "split", "--run", run.name, runs=runs) == 2
    assert (f"error: step 'split' has several outputs; name one: split.high, split.low hint: "
            f"rag show split.high --run {run.name}") in _err(capsys)


def test_show_of_an_artifact_gc_removed_says_so_and_how_to_recompute_it(toy, capsys):
    """Before: "…/_manifest.json: missing; the cached artifact is damaged", with the hint to run
    rag verify (which finds nothing damaged: the entry is simply not in the cache any more)."""
    runs = toy / "runs"
    run = runs / "chain" / "20260101-000000"
    _fake_run(run, command="rag run conf/chain.yaml steps.sft.add=7")
    (run / "artifacts").mkdir()
    gone = toy / "cache" / "objects" / "ab" / "abcd" / "outputs" / "out"
    (run / "artifacts" / "sft.out").symlink_to(gone)
    assert rag("show", "sft", runs=runs) == 1
    err = _err(capsys)
    assert (f"error: sft of run 20260101-000000 is no longer in the cache (removed by rag gc, or "
            f"the cache moved): {gone} hint: recompute it by rerunning the run's command (its "
            "other steps are reused): rag run conf/chain.yaml steps.sft.add=7") in err
    assert "damaged" not in err


def test_gc_where_there_is_no_runs_directory_creates_nothing(tmp_path, monkeypatch, capsys):
    """Before: `rag gc --runs-dir TYPO` created TYPO/cache/runs-dirs/… and said it kept what
    the runs of 1 runs dir reference, exit 0, with nothing to tell the user of the typo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAGLINE_CACHE", raising=False)
    assert rag("gc", "--runs-dir", str(tmp_path / "rnus")) == 0
    err = _err(capsys)
    assert "removed 0 entries" in err
    assert f"note: no runs directory {tmp_path / 'rnus'}/ (looked from {tmp_path})" in err
    assert "if rag run wrote its runs elsewhere, pass that --runs-dir" in err
    assert list(tmp_path.iterdir()) == []
    assert rag("gc") == 0   # ./runs is not there either
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("days", ["-3", "nan", "inf", "abc"])
def test_gc_keep_days_must_be_a_number_of_days(days, tmp_path, monkeypatch, capsys):
    """Before: --keep-days -3 (or nan) was taken, and kept nothing more without a word."""
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    assert rag("gc", "--dry-run", "--keep-days", days, runs=tmp_path / "runs") == 2
    assert "argument --keep-days: expected a number of days" in _err(capsys)
    assert rag("gc", "--dry-run", "--keep-days", "0.5", runs=tmp_path / "runs") == 0


def test_dag_of_a_sweep_says_which_member_it_draws(toy, capsys):
    """Before: `rag dag R -m a=1,2` drew member 0 alone without saying so."""
    assert rag("dag", str(toy / "conf/chain.yaml"), "-m", "steps.dpo.add=1,2",
               runs=toy / "runs") == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("load [toy_gen]")   # stdout: the DAG alone, for | dot
    assert ("note: drawn for member 0 of 2 (steps.dpo.add=1); to draw another, give its "
            "overrides without -m") in _words(captured.err)


def test_dag_names_an_unset_source_path(tmp_path, monkeypatch, capsys):
    """Before: "source corpus: None" (the demo leaves data.corpus unset: a synthetic corpus)."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    assert rag("dag", "conf/dynamicrag_demo.yaml", runs=tmp_path / "runs") == 0
    out = capsys.readouterr().out
    assert "source corpus: (no path set)" in out and ": None" not in out


def test_plan_refuses_a_runs_dir_that_is_a_file(toy, capsys):
    """Before: exit 0 after two warnings that files under it were "damaged" (Not a directory)."""
    (toy / "afile").write_text("")
    assert rag("plan", str(toy / "conf/chain.yaml"), runs=toy / "afile") == 2
    err = _err(capsys)
    assert f"error: runs directory {toy / 'afile'} is a file, not a directory" in err
    assert "damaged" not in err


def test_status_prints_the_command_as_it_was_run_and_how_to_resume(toy, capsys):
    """Before: rich read `[tests.toy.stages]` in the command as markup and dropped it, so the
    command shown to copy was not the one that ran; an interrupted run did not say to rerun it."""
    runs = toy / "runs"
    command = "rag run conf/chain.yaml 'ragline.imports=[tests.toy.stages]'"
    _fake_run(runs / "chain" / "20260101-000000", state="interrupted", command=command,
              steps={"load": {"stage": "toy_gen", "state": "running"}})
    assert rag("status", runs=runs) == 0
    out = _err(capsys)
    assert f"state: interrupted command: {command}" in out
    assert "rerun that command to resume: finished steps are reused" in out


def test_status_of_a_running_run_gives_the_running_steps_seconds_so_far(toy, capsys):
    """Before: the seconds cell of the step still running was empty, so `rag status` during a
    long run did not say how long its current step had been going."""
    import re
    import time

    runs = toy / "runs"
    _fake_run(runs / "chain" / "20260101-000000", state="running",
              steps={"load": {"stage": "toy_gen", "state": "done", "cache": "miss",
                              "duration": 1.5, "started": time.time() - 90},
                     "sft": {"stage": "toy_map", "state": "running", "started": time.time() - 75}})
    assert rag("status", runs=runs) == 0
    rows = {row.split("│")[1].strip(): [cell.strip() for cell in row.split("│")[2:-1]]
            for row in capsys.readouterr().out.splitlines() if row.count("│") == 7}
    assert rows["load"] == ["toy_gen", "done", "miss", "", "1.500"]
    assert rows["sft"][:2] == ["toy_map", "running"]
    assert re.fullmatch(r"(75|76|77) so far", rows["sft"][-1]), rows


def test_status_of_an_unfinished_sharded_step_counts_its_committed_shards(toy, capsys):
    """Before: the shards cell of a sharded step still running (or interrupted) said only how
    many shards it had, not how many were done, which a resume would reuse."""
    import shutil

    from orchestrator.store import Store

    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "--until", "retrieve", runs=runs) == 0
    path = next(runs.glob("chain/*/status.json"))
    status = json.loads(path.read_text())
    step = status["steps"]["retrieve"]
    assert len(step["keys"]) == 4
    shutil.rmtree(Store.for_runs(runs).entry_path(step["keys"][2]))  # one shard not yet committed
    status["state"] = step["state"] = "running"
    status["pid"] = 2 ** 22 + 7   # a process that is gone: the run reads interrupted
    path.write_text(json.dumps(status))
    capsys.readouterr()

    assert rag("status", runs=runs) == 0
    rows = {row.split("│")[1].strip(): [cell.strip() for cell in row.split("│")[2:-1]]
            for row in capsys.readouterr().out.splitlines() if row.count("│") == 7}
    assert (rows["retrieve"][1], rows["retrieve"][3]) == ("interrupted", "3/4 done"), rows
    assert rows["load"][3] == "1"
    assert rag("status", "--json", runs=runs) == 0
    assert json.loads(capsys.readouterr().out)["steps"]["retrieve"]["shards_done"] == 3


@pytest.mark.parametrize("command", ["verify", "gc", "status"])
def test_ctrl_c_in_a_command_that_runs_no_step(command, toy, monkeypatch, capsys):
    """Before: every command said "finished steps are cached; rerun the same command to
    resume" on Ctrl-C, also `rag verify --all` (which runs no step) re-hashing a large cache."""
    import importlib

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(f"orchestrator.cli.{command}"), "main", interrupted)
    assert rag(command, "--runs-dir", str(toy / "runs")) == 130
    err = _err(capsys)
    assert f"interrupted: rag {command} stopped" in err
    assert "finished steps" not in err and "Traceback" not in err


def test_every_option_of_every_command_has_help():
    """Before: `rag show --runs-dir/--json`, `rag gc --runs-dir`, `rag verify --runs-dir`,
    `rag stages --json` and `rag dag --format` had no help line."""
    parser = build_parser()
    missing = [f"rag {name} {'/'.join(a.option_strings)}"
               for name, sub in parser.subparsers.items() for a in sub._actions
               if a.option_strings and a.help in (None, "") and not isinstance(a, argparse._HelpAction)]
    assert missing == []


def test_status_of_a_running_step_gives_the_seconds_of_its_last_run_beside_so_far(toy, capsys):
    """"75 so far" alone did not say whether the step was nearly done; the runner's history
    keeps how long the step took the last time it ran to the end in this runs directory."""
    import os
    import re
    import time

    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "steps.retrieve.sleep=1.0", runs=runs) == 0
    path = next(runs.glob("chain/*/status.json"))
    status = json.loads(path.read_text())
    status["state"], status["pid"] = "running", os.getpid()   # this process: alive
    status["steps"]["retrieve"].update(state="running", started=time.time() - 75)
    path.write_text(json.dumps(status))
    capsys.readouterr()
    assert rag("status", runs=runs) == 0
    rows = {row.split("│")[1].strip(): [cell.strip() for cell in row.split("│")[2:-1]]
            for row in capsys.readouterr().out.splitlines() if row.count("│") == 7}
    found = re.fullmatch(r"(75|76|77) so far \(last run: (\d+)\)", rows["retrieve"][-1])
    assert found and int(found.group(2)) >= 1, rows   # 4 shards of 1 s each: a lower bound


@pytest.mark.parametrize("argv, message", [
    (["status", "--runs", "20260101-000000"],
     "rag status: error: unrecognized arguments: --runs (did you mean --run or --runs-dir? "),
    (["run", "r.yaml", "--unti", "load"],
     "rag run: error: unrecognized arguments: --unti load (did you mean --until? "),
    (["gc", "--keep-runs", "-1"], "rag gc: error: argument --keep-runs: must be >= 0, got -1 ("),
])
def test_usage_errors_are_one_line_and_take_no_abbreviation(argv, message, capsys):
    """Before: `rag status --runs X` was read as --runs-dir X ('no runs directory X/'), `--unti`
    and `--forc` passed and were copied into the hints we print, and each usage error came
    after a usage block of 2 to 5 lines. A mistyped option is refused, with the one meant."""
    assert rag(*argv) == 2
    err = capsys.readouterr().err
    assert err == f"{message}`rag {argv[0]} --help` shows the usage)\n"
