"""``rag status`` / ``rag show`` find a run by path, by ``<time>``, by ``<recipe>/<time>``, or
the latest one even in a runs dir copied without its ``latest`` link."""

from __future__ import annotations

import json
import shutil

from tests.conftest import rag

RECIPE = """\
ragline:
  imports: [tests.toy.stages]
steps:
  load: {stage: toy_gen, n: 4}
"""


def test_runs_are_found_by_name_by_recipe_and_time_and_without_latest(toy, capsys):
    recipe = toy / "conf" / "one.yaml"
    recipe.write_text(RECIPE)
    runs = toy / "runs"
    assert rag("run", str(recipe), runs=runs) == 0
    (run,) = [p for p in (runs / "one").iterdir() if p.name != "latest"]
    capsys.readouterr()
    for spec in (run.name, f"one/{run.name}", str(run)):
        assert rag("status", spec, "--json", runs=runs) == 0, spec
        assert json.loads(capsys.readouterr().out)["steps"]["load"]["state"] == "done"

    copy = toy / "copied"
    shutil.copytree(runs, copy, symlinks=True)
    (copy / "latest").unlink()
    assert rag("status", "--json", runs=copy) == 0
    assert json.loads(capsys.readouterr().out)["steps"]["load"]["state"] == "done"

    assert rag("status", "one/nosuch", runs=runs) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "name one as <time>, <time>-sweep, <recipe>/<time> or its path" in err
    assert err.endswith(f"; the newest: one/{run.name}")   # names that work, to copy


def test_show_of_a_run_without_artifacts_says_so(toy, capsys):
    recipe = toy / "conf" / "one.yaml"
    recipe.write_text(RECIPE)
    runs = toy / "runs"
    assert rag("run", str(recipe), runs=runs) == 0
    shutil.rmtree(runs / "latest" / "artifacts")
    capsys.readouterr()
    assert rag("show", "lod", runs=runs) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "has no artifact 'lod'" in err and "this run recorded no artifacts" in err


def test_after_a_failed_run_show_and_report_name_the_newest_run_that_has_what_they_read(
        toy, capsys, monkeypatch):
    """A run that stopped early is the latest one; the results a user came for are in an older
    run, which the hint names as a command to copy."""
    recipe, runs = toy / "conf" / "chain.yaml", toy / "runs"
    assert rag("run", str(recipe), runs=runs) == 0
    good = (runs / "latest").resolve()
    monkeypatch.setenv("TOY_FAIL", "retrieve:0")
    assert rag("run", str(recipe), "steps.load.n=9", runs=runs) != 0
    capsys.readouterr()
    assert rag("show", "dpo", runs=runs) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"hint: the newest run that has it: rag show dpo --run chain/{good.name}" in err
    assert rag("report", "--runs-dir", str(runs)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"hint: the newest run with metrics: rag report chain/{good.name}" in err
    assert rag("report", f"chain/{good.name}", "--runs-dir", str(runs)) == 0   # the hint works
    assert rag("show", "nosuch", runs=runs) == 2                  # nothing has it: the old hint
    assert "hint: artifacts: load" in " ".join(capsys.readouterr().err.split())


def test_a_misspelt_step_after_a_run_without_artifacts_is_matched_against_the_newest_outputs(
        toy, capsys):
    """The latest run stopped before any output (a refused setting), so ``rag show lod`` had
    no names to suggest from: 'recorded no artifacts'. The newest run with outputs gives them."""
    recipe = toy / "conf" / "one.yaml"
    recipe.write_text(RECIPE)
    runs = toy / "runs"
    assert rag("run", str(recipe), runs=runs) == 0
    first = (runs / "latest").resolve()
    assert rag("run", str(recipe), runs=runs) == 0
    latest = (runs / "latest").resolve()
    assert latest != first
    shutil.rmtree(latest / "artifacts")
    capsys.readouterr()
    assert rag("show", "lod", runs=runs) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "has no artifact 'lod' (did you mean 'load'?)" in err, err
    assert f"the newest run that has it: rag show load --run one/{first.name}" in err, err
