"""Recipe loading's messages (an audit): each names the file:line, key or override, says what
was expected and what to do, and exits 2."""

from __future__ import annotations

import shutil
import warnings

import pytest
from orchestrator.locate import shipped_conf
from tests.conftest import REPO, rag


def _plan(toy, recipe, *overrides) -> int:
    return rag("plan", str(recipe), *overrides, runs=toy / "runs")


def _err(capsys) -> str:
    return capsys.readouterr().err.replace("\n", " ")


@pytest.mark.parametrize("override", ["=1", "+=1"])
def test_an_override_without_a_key_is_named(toy, capsys, override):
    assert _plan(toy, toy / "conf/chain.yaml", override) == 2
    err = _err(capsys)
    assert f"override '{override}': no key before the '='; expected KEY=VALUE" in err
    assert "hint: write the key to set, e.g. steps.NAME.FIELD=VALUE" in err


def test_a_group_override_that_is_not_an_option_name_lists_the_options(toy, capsys):
    assert _plan(toy, toy / "conf/chain.yaml", "executor=1") == 2
    err = _err(capsys)
    assert ("override 'executor=1': executor is a config group; expected the name of one of its "
            "options, got an int") in err
    assert "options in executor/: isolated, local, ray, slurm" in err


@pytest.mark.parametrize("name, text, what", [
    ("stages.py", (REPO / "tests/toy/stages.py").read_text(), "a .py file"),
    ("r.json", '{"steps": {}}\n', "a .json file"),
    ("notes.txt", "hello\n", "a .txt file"),
])
def test_a_file_that_is_not_yaml_is_not_told_to_rename(toy, capsys, name, text, what):
    path = toy / name
    path.write_text(text)
    assert _plan(toy, path) == 2
    err = _err(capsys)
    assert f"{path}: not a recipe: a recipe is a YAML file (conf/NAME.yaml), this is {what}" in err
    assert "mv " not in err and "recipes in conf/: " in err and "dynamicrag_demo" in err


def test_a_yaml_mapping_without_a_suffix_is_told_to_rename(toy, capsys):
    path = toy / "conf/mychain"   # no mychain.yaml next to it
    shutil.copy(toy / "conf/chain.yaml", path)
    assert _plan(toy, path) == 2
    assert f"hint: rename it: mv {path} {path}.yaml" in _err(capsys)


@pytest.mark.parametrize("body, expected", [
    ("steps: {}\n", "{recipe}:3: steps: is empty; a recipe needs at least one step"),
    ("steps:\n", "{recipe}:3: steps: is empty; a recipe needs at least one step"),
    ("steps: 3\n", "{recipe}:3: steps: is an int (3), not a mapping of steps NAME: {{stage:"),
    ("steps: abc\n", "{recipe}:3: steps: is a str ('abc'), not a mapping of steps"),
    ("steps: [load]\n", "{recipe}:3: steps: is a list (['load']); steps are a mapping NAME: "
                        "{{stage: STAGE, ...}}"),
    ("step:\n  load: {{stage: toy_gen}}\n",
     "{recipe}:3: no steps: in the recipe; 'step:' looks like a misspelled steps:"),
    ("scale: 1\n", "{recipe}: no steps: in the recipe (its keys: ragline, scale)"),
])
def test_a_recipe_without_a_steps_mapping_says_which_case(toy, capsys, body, expected):
    recipe = toy / "conf/r.yaml"
    recipe.write_text("ragline:\n  imports: [tests.toy.stages]\n" + body.replace("{{", "{")
                      .replace("}}", "}"))
    assert _plan(toy, recipe) == 2
    err = _err(capsys)
    assert expected.format(recipe=recipe) in err
    assert "hint:" in err and "no 'steps' mapping" not in err


def test_a_list_of_steps_shows_the_mapping_to_write(toy, capsys):
    recipe = toy / "conf/r.yaml"
    recipe.write_text("steps:\n  - retrieve: {stage: toy_gen}\n")
    assert _plan(toy, recipe) == 2
    err = capsys.readouterr().err
    example = "e.g.\n      steps:\n        retrieve: {stage:"
    assert f"hint: drop the '- ' in front of each step, {example}" in err


@pytest.mark.parametrize("text, expected", [
    ("", "{recipe}: the file is empty; a recipe names its steps under steps:"),
    ("# nothing yet\n", "{recipe}: the file is empty"),
    ("hello\n", "{recipe}:1: a recipe must be a mapping (steps:, data:, ...), got a str: 'hello'"),
    ("# a list\n- a\n", "{recipe}: a recipe must be a mapping (steps:, data:, ...), got a list "
                        "(line 2: '- a')"),
])
def test_an_empty_file_or_one_that_is_not_a_mapping_says_so(toy, capsys, text, expected):
    recipe = toy / "conf/r.yaml"
    recipe.write_text(text)
    assert _plan(toy, recipe) == 2
    assert expected.format(recipe=recipe) in _err(capsys)


@pytest.mark.parametrize("entry, line, near", [("defaults: [nope]\n", 1, ""),
                                               ("defaults:\n  - _self_\n  - chian\n", 3,
                                                " (did you mean 'chain'?)")])
def test_an_unknown_defaults_entry_names_its_line_and_the_choices(toy, capsys, entry, line, near):
    recipe = toy / "conf/r.yaml"
    recipe.write_text(entry + "steps:\n  load: {stage: toy_gen, n: 8}\n")
    name = "nope" if "nope" in entry else "chian"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _plan(toy, recipe) == 2
    err = _err(capsys)
    assert [str(w.message) for w in caught if "hydra" in w.filename] == []
    assert (f"{recipe}:{line}: defaults: '{name}' is not a config in conf/ (or the shipped "
            f"{shipped_conf()}) (no {name}.yaml){near}") in err
    assert ("hint: name a config there: chain; groups (written - GROUP: OPTION): dpa_rag, "
            "dynamicrag, executor, ") in err


@pytest.mark.parametrize("override, hint", [
    ("steps.x=", "an empty value sets '' (an empty string), not a step; to add a step write "
                 "+steps.x.stage=NAME"),
    ("steps.dpoo=", "an empty value sets '' (an empty string), not a step; to remove step "
                    "'dpo' write steps.dpo=null"),
    ("scal=", "scale= sets it to '' (an empty string), scale=null to null"),
    ("foo=", "an empty value sets '' (an empty string), foo=null sets null; to add the key "
             "write +foo=VALUE"),
])
def test_an_empty_value_on_an_unknown_key_says_what_it_means(toy, capsys, override, hint):
    assert _plan(toy, toy / "conf/chain.yaml", override) == 2
    err = _err(capsys)
    assert f"override '{override}': chain.yaml has no key" in err
    assert f"hint: {hint}" in err and f"+{override} " not in err + " "


@pytest.mark.parametrize("sweep, repeated, kept", [
    ("steps.dpo.add=0.1,0.1", "'0.1'", "steps.dpo.add=0.1"),
    ("steps.dpo.add=0.1,0.2,0.1", "'0.1'", "steps.dpo.add=0.1,0.2"),
    ("executor=local,local", "'local'", "executor=local"),
])
def test_a_sweep_value_given_twice_is_refused(toy, capsys, sweep, repeated, kept):
    assert _plan(toy, toy / "conf/chain.yaml", "-m", sweep) == 2
    err = _err(capsys)
    assert f"override '{sweep}': the sweep lists the value {repeated} twice" in err
    assert f"hint: remove the repeat: {kept}" in err
