"""Source paths: a relative path is looked up in the current directory, then in the recipe's
project directory (the folder holding its conf/ tree); the plan and the error say which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import REPO, rag

RECIPE = """ragline: {imports: [tests.toy.stages]}
sources:
  numbers: data/n.txt
steps:
  load: {stage: toy_gen, inputs: {path: numbers}}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """(recipe, project dir, an unrelated current directory)."""
    proj = tmp_path / "proj"
    (proj / "conf").mkdir(parents=True)
    (proj / "conf" / "r.yaml").write_text(RECIPE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    return proj / "conf" / "r.yaml", proj.resolve(), Path.cwd()


def _plan(recipe: Path, runs: Path, capsys) -> dict:
    assert rag("plan", str(recipe), "--json", runs=runs) == 0
    member = json.loads(capsys.readouterr().out)["members"][0]
    assert rag("plan", str(recipe), "--check", runs=runs) == (2 if member["problems"] else 0)
    capsys.readouterr()
    return member


def test_relative_source_found_in_the_project_directory(project, tmp_path, capsys):
    recipe, proj, here = project
    (proj / "data").mkdir()
    (proj / "data" / "n.txt").write_text("3\n4\n")
    plan = _plan(recipe, tmp_path / "runs", capsys)
    assert plan["problems"] == []
    assert plan["notes"] == [f"source 'numbers': data/n.txt not in the current directory ({here}); "
                             f"read from the recipe's project directory {proj}"]
    assert rag("run", str(recipe), "--no-progress", runs=tmp_path / "runs") == 0
    status = json.loads((tmp_path / "runs" / "latest" / "status.json").read_text())
    assert status["steps"]["load"]["state"] == "done"


def test_relative_source_in_the_current_directory_comes_first(project, tmp_path, capsys):
    recipe, proj, here = project
    for root in (proj, here):
        (root / "data").mkdir()
        (root / "data" / "n.txt").write_text("1\n")
    plan = _plan(recipe, tmp_path / "runs", capsys)
    assert plan["problems"] == [] and plan["notes"] == []


def test_missing_relative_source_names_every_place(project, tmp_path, capsys):
    recipe, proj, here = project
    plan = _plan(recipe, tmp_path / "runs", capsys)
    expected = (f"{recipe}:3: source 'numbers': data/n.txt does not exist (looked in the current "
                f"directory {here}, the recipe's project directory {proj} and the shipped "
                f"project {REPO})")
    assert plan["problems"] == [expected]
    assert rag("run", str(recipe), "--no-progress", runs=tmp_path / "runs") == 2
    assert expected in capsys.readouterr().err.replace("\n", "")


def test_an_empty_source_path_is_refused_not_read_as_the_current_directory(project, tmp_path,
                                                                         capsys):
    """``sources.numbers=''`` (say ``data.eval_questions=''``) once read the current directory."""
    recipe, _, _ = project
    expected = ("override 'sources.numbers=''': source 'numbers': the path is empty; set a path, "
                "or null to leave it out")
    assert rag("plan", str(recipe), "sources.numbers=''", "--check", runs=tmp_path / "runs") == 2
    assert expected in " ".join(capsys.readouterr().out.split())
    assert rag("run", str(recipe), "sources.numbers=''", "--no-progress",
               runs=tmp_path / "runs") == 2
    assert expected in " ".join(capsys.readouterr().err.split())


def test_project_dir_is_the_folder_holding_conf():
    from orchestrator.locate import project_dir

    assert project_dir(Path("/a/proj/conf/dynamicrag/x.yaml")) == Path("/a/proj")
    assert project_dir(Path("/a/recipes/x.yaml")) == Path("/a/recipes")


SETTING_RECIPE = """ragline: {imports: [tests.toy.stages]}
steps:
  read: {stage: toy_setting, setting: conf/setting.txt}
"""


def _setting_project(root: Path, text: str) -> Path:
    (root / "conf").mkdir(parents=True)
    (root / "conf" / "r.yaml").write_text(SETTING_RECIPE)
    (root / "conf" / "setting.txt").write_text(text)
    return root / "conf" / "r.yaml"


def test_recipe_path_field_is_found_in_the_project_and_given_absolute(tmp_path, monkeypatch, capsys):
    """A ``recipe_path`` config field (e.g. sft's deepspeed) is looked up like a source; the
    stage gets the absolute path, and the plan says where it was read from."""
    recipe = _setting_project(tmp_path / "proj", "from the project")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    step = _plan(recipe, tmp_path / "runs", capsys)["steps"][0]
    assert step["notes"] == [f"steps.read.setting: conf/setting.txt not in the current directory "
                             f"({Path.cwd()}); read from the recipe's project directory "
                             f"{(tmp_path / 'proj').resolve()}"]
    assert rag("run", str(recipe), "--no-progress", runs=tmp_path / "runs") == 0
    got = json.loads((tmp_path / "runs" / "latest" / "metrics.json").read_text())["read"]
    assert got == {"path": str((tmp_path / "proj" / "conf" / "setting.txt").resolve()),
                   "text": "from the project"}


def test_recipe_path_lookup_is_not_remembered_across_directories(tmp_path, monkeypatch, capsys):
    """The same recipe text planned from two directories in one process: each finds its own
    file (the step-check memo keys on the current directory and the recipe's path)."""
    for name in ("a", "b"):
        recipe = _setting_project(tmp_path / name, f"project {name}")
        monkeypatch.chdir(tmp_path / name)
        assert rag("run", str(recipe), "--no-progress", runs=tmp_path / name / "runs") == 0
        got = json.loads((tmp_path / name / "runs" / "latest" / "metrics.json").read_text())
        assert got["read"]["text"] == f"project {name}"


def test_a_command_from_elsewhere_says_where_the_recipes_runs_are(project, tmp_path, capsys,
                                                                  monkeypatch):
    """Run from the project, then plan from another directory without --runs-dir: the plan
    would start an empty ./runs, and says where the recipe's runs and cache are."""
    recipe, proj, here = project
    (proj / "data").mkdir()
    (proj / "data" / "n.txt").write_text("3\n4\n")
    monkeypatch.chdir(proj)
    from tests.conftest import rag as rag_here

    assert rag_here("run", str(recipe), "--no-progress") == 0
    monkeypatch.chdir(here)
    capsys.readouterr()
    assert rag_here("plan", str(recipe)) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert (f"note: ./runs has no run of this recipe, but {proj / 'runs'} has: add --runs-dir "
            f"{proj / 'runs'} to use them") in err
    assert rag_here("plan", str(recipe), "--runs-dir", str(proj / "runs")) == 0
    assert "./runs has no run of this recipe" not in capsys.readouterr().err
    assert rag_here("run", str(recipe), "--no-progress") == 0          # rag run says it too
    assert "./runs has no run of this recipe, but" in capsys.readouterr().err
