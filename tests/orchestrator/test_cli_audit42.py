"""The command line as the CLI audit 42 found it: ``--force``/``--from`` in a sweep, a ``~`` in
the runs and cache folders, ``rag report``/``rag show`` after a sweep, ``rag status``'s resume
command from another folder, did-you-mean for a mistyped option, and ``--only a,b``."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from orchestrator.cli.common import run_order
from tests.conftest import counts, rag
from tests.faults.faultkit import recipe

RANDOM = """\
ragline:
  imports: [tests.toy.stages]
steps:
  gen: {stage: toy_random, n: 4}
  mul: {stage: toy_map, inputs: {numbers: gen}, add: 1.0}
  total: {stage: toy_sum, inputs: {numbers: mul}}
"""


def _words(text: str) -> str:
    return " ".join(text.split())


def _member_totals(runs, sweep) -> list[float]:
    return [json.loads((m / "status.json").read_text())["metrics"]["total"]["sum"]
            for m in sorted(sweep.glob("member-*"))]


def _newest_sweep(runs, name: str):
    return sorted((runs / name).glob("*-sweep"), key=lambda p: run_order(p.name))[-1]


def test_force_in_a_sweep_recomputes_a_shared_step_once_for_every_member(toy, capsys):
    """Before: each member forced `gen` again, so member-0001 was built on other random numbers
    than member-0000 (totals apart by more than the swept 4 x 1), and a plain rerun of the
    sweep recomputed member-0000, whose `gen` output had been replaced."""
    runs, path = toy / "runs", recipe(toy, RANDOM, "rnd.yaml")
    sweep = ("run", str(path), "-m", "steps.mul.add=1,2", "--no-progress")
    assert rag(*sweep, runs=runs) == 0
    capsys.readouterr()
    assert rag(*sweep, "--force", "gen", runs=runs) == 0
    forced = _newest_sweep(runs, "rnd")
    first, second = _member_totals(runs, forced)
    assert second - first == pytest.approx(4.0)      # the same 4 numbers, plus 1 or plus 2
    links = [(m / "artifacts" / "gen.out").resolve() for m in sorted(forced.glob("member-*"))]
    assert links[0] == links[1]
    err = _words(capsys.readouterr().err)
    assert ("gen: recomputed once in this command (--force/--from), by member-0000: reused"
            in err)
    capsys.readouterr()
    assert rag(*sweep, runs=runs) == 0                # a plain rerun: all cached
    out = _words(capsys.readouterr().out)
    assert "│ member-0000 │ 1 │ ok, 0 ran │" in out
    assert "│ member-0001 │ 2 │ ok, 0 ran │" in out
    assert _member_totals(runs, _newest_sweep(runs, "rnd")) == [first, second]


def test_from_in_a_sweep_runs_the_tasks_plan_counts(toy, monkeypatch, capsys):
    """Before: `--from retrieve` on 3 members ran every shared step 3 times (36 toy_map tasks)
    while `rag plan` said 17 to run; the plan's later members said 'forced' for a step the
    first member recomputes for them."""
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    members = ("-m", "steps.dpo.add=1,2,3")
    assert rag("run", chain, *members, "--no-progress", runs=runs) == 0
    capsys.readouterr()
    assert rag("plan", chain, *members, "--from", "retrieve", runs=runs) == 0
    out = _words(capsys.readouterr().out)
    assert "3 member(s), 42 tasks, 18 distinct (shared steps counted once), 17 to run" in out
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", chain, *members, "--from", "retrieve", "--no-progress", runs=runs) == 0
    ran = counts(toy / "count.txt")
    assert ran["retrieve:0"] == ran["aggregate:0"] == ran["reward:0"] == 1
    assert ran["dpo:0"] == 3
    assert sum(ran.values()) + 3 == 17                # and 3 evaluate (toy_sum counts none)
    assert out.count("forced (--force/--from)") == 1          # member-0000's retrieve
    assert out.count("forced: recomputed once in this sweep, by member-0000") == 2
    capsys.readouterr()
    assert rag("run", chain, *members, "--no-progress", runs=runs) == 0
    assert _words(capsys.readouterr().out).count("ok, 0 ran") == 3


def test_a_tilde_in_the_runs_and_cache_folders_is_the_home_folder(toy, monkeypatch, capsys):
    """Before: `--runs-dir=~/r`, `ragline.runs_dir: ~/rd` and RAGLINE_CACHE=~/cache each made a
    folder named `~` in the current directory."""
    home, here = toy / "home", toy / "here"
    home.mkdir()
    here.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(here)
    path = recipe(toy, RANDOM.replace("ragline:\n", "ragline:\n  runs_dir: ~/rd\n"), "r.yaml")
    assert rag("run", str(path), "--no-progress") == 0
    assert list((home / "rd" / "r").glob("*/status.json"))
    assert rag("run", str(toy / "conf/chain.yaml"), "--runs-dir=~/runs", "--until", "load") == 0
    assert list((home / "runs" / "chain").glob("*/status.json"))
    monkeypatch.setenv("RAGLINE_CACHE", "~/cache")
    assert rag("run", str(path), "--runs-dir", str(toy / "r2"), "--no-progress") == 0
    assert (home / "cache" / "objects").is_dir()
    capsys.readouterr()
    assert rag("status", "--runs-dir=~/runs") == 0
    assert "state: ok" in capsys.readouterr().out
    assert not (here / "~").exists() and not (toy / "~").exists()


def test_report_after_a_sweep_shows_the_sweep_and_show_names_the_member(toy, capsys):
    """Before: both read the sweep's last member, with no word of which (`rag status` showed
    the whole sweep)."""
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "-m", "steps.dpo.add=1,2,3", "--no-progress",
               runs=runs) == 0
    sweep = _newest_sweep(runs, "chain")
    capsys.readouterr()
    assert rag("report", "--runs-dir", str(runs)) == 0
    out = _words(capsys.readouterr().out)
    assert f"results of runs in chain/{sweep.name}/" in out
    for i, total in enumerate(["48.000", "56.000", "64.000"]):
        assert f"│ member-000{i} │ {i + 1} │ evaluate │ chain │ {total} │ 8 │" in out
    assert rag("report", "--runs-dir", str(runs), "--format", "json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["run"], r["sum"]) for r in rows] == [
        (f"chain/{sweep.name}/member-000{i}", s) for i, s in enumerate([48.0, 56.0, 64.0])]
    assert rag("show", "evaluate", runs=runs) == 0
    captured = capsys.readouterr()
    assert "sum: 64.0" in captured.out
    assert (f"note: the latest run is a sweep: this is its member {sweep.name}/member-0002 "
            f"(steps.dpo.add=3); another member: rag show evaluate --run {sweep.name}/member-0000 "
            f"--runs-dir {runs}") in _words(captured.err)


def test_status_prints_a_resume_command_that_works_from_another_folder(toy, monkeypatch,
                                                                       capsys):
    """Before: `rag status` printed `rag run conf/chain.yaml --runs-dir runs`, which from
    another folder finds no recipe (or starts a new, empty runs directory)."""
    elsewhere = toy / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(toy)
    assert rag("run", "conf/chain.yaml", "--runs-dir", "runs", "--until", "load") == 0
    assert rag("run", "conf/chain.yaml", "--runs-dir", "runs", "-m", "steps.dpo.add=1,2",
               "--until", "load") == 0
    sweep = _newest_sweep(toy / "runs", "chain")
    shutil.rmtree(sweep / "member-0001")              # a sweep stopped before its last member
    capsys.readouterr()
    assert rag("status", "--runs-dir", "runs", sweep.name) == 0
    assert ("rerun the same command to resume: rag run conf/chain.yaml --runs-dir runs -m"
            in _words(capsys.readouterr().out))        # from where it ran: as it was typed
    monkeypatch.chdir(elsewhere)
    run = next((toy / "runs" / "chain").glob("2*[0-9]"))
    assert rag("status", str(run)) == 0
    assert (f"command: cd {toy} && rag run conf/chain.yaml --runs-dir runs --until load"
            in _words(capsys.readouterr().out))
    assert rag("status", str(sweep)) == 0
    assert (f"rerun the same command to resume: cd {toy} && rag run conf/chain.yaml --runs-dir "
            "runs -m steps.dpo.add=1,2 --until load" in _words(capsys.readouterr().out))


@pytest.mark.parametrize("argv, meant", [
    (["run", "r.yaml", "--runs", "/tmp/r"], "--runs-dir"),
    (["run", "r.yaml", "--onyl", "dpo"], "--only"),
    (["gc", "--dryrun"], "--dry-run"),
    (["stat"], "status"),
])
def test_a_mistyped_option_or_subcommand_gets_a_did_you_mean(argv, meant, capsys):
    assert rag(*argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"(did you mean {meant}? `rag" in err, err


def test_only_with_commas_says_the_flag_repeats(toy, capsys):
    """Before: `--only reward,dpo` suggested 'reward', which silently drops dpo."""
    runs = toy / "runs"
    assert rag("run", str(toy / "conf/chain.yaml"), "--only", "reward,dpo", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert ("error: no step 'reward,dpo' in chain.yaml: --only takes one step; repeat it: "
            "--only reward --only dpo") in err
    assert "did you mean" not in err
    assert rag("run", str(toy / "conf/chain.yaml"), "--force", "rewrd", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert re.search(r"no step 'rewrd' in chain\.yaml \(did you mean 'reward'\?\) hint: --force "
                     r"takes one of the steps: load, retrieve", err), err


def test_a_bad_executor_setting_is_blamed_on_its_override_or_its_group_file(toy, capsys):
    """Before: both were blamed on the recipe's `ragline:` line (chain.yaml:8)."""
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    assert rag("plan", chain, "ragline.executor.max_parallel=-1", runs=runs) == 2
    assert ("error: override 'ragline.executor.max_parallel=-1': ragline.executor.max_parallel: "
            "expected a whole number, 0 or more, got -1") in capsys.readouterr().err
    local = toy / "conf" / "executor" / "local.yaml"
    text = local.read_text()
    assert "max_parallel: 0" in text
    local.write_text(text.replace("max_parallel: 0", "max_parallel: -2"))
    line = text[:text.index("max_parallel: 0")].count("\n") + 1
    assert rag("plan", chain, runs=runs) == 2
    assert (f"error: {local}:{line}: ragline.executor.max_parallel: expected a whole number"
            in capsys.readouterr().err)


@pytest.mark.parametrize("command, says", [("plan", "sweep: plan every combination"),
                                           ("config", "sweep: print the recipe of every"),
                                           ("dag", "draw the first")])
def test_the_help_of_m_says_what_each_command_does_with_a_sweep(command, says, capsys):
    """Before: `rag config/dag/plan --help` said -m would "run every combination"."""
    assert rag(command, "--help") == 0
    assert says in _words(capsys.readouterr().out)
