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
