"""Composition errors name the file, line, key or override, and say what to do (exit 2)."""

from __future__ import annotations

import json
import shutil

import pytest
from tests.conftest import rag

from orchestrator.errors import ConfigError
from orchestrator.where import place

STEPS = """\
ragline:
  imports: [tests.toy.stages]
steps:
  load: {stage: toy_gen, n: 8}
  dpo: {stage: toy_map, inputs: {numbers: load}, add: 0.1}
"""


def _err(capsys) -> str:
    return capsys.readouterr().err.replace("\n", " ")


def _plan(toy, recipe, *overrides) -> int:
    return rag("plan", str(recipe), *overrides, runs=toy / "runs")


def test_an_unterminated_interpolation_names_its_line_and_key(toy, capsys):
    recipe = toy / "conf/interp.yaml"
    recipe.write_text(STEPS.replace("n: 8", 'n: "${oops"'))
    assert _plan(toy, recipe) == 2
    err = _err(capsys)
    assert f"{recipe}:4: steps.load.n: unterminated interpolation ${{...}} in '${{oops'" in err
    assert "close it: ${other.key}" in err


def test_a_value_read_from_a_shared_section_names_where_it_is_set(toy, capsys):
    (toy / "conf/pipe.yaml").write_text(STEPS.replace("add: 0.1", 'add: "${common.add}"')
                                        + "common:\n  add: 1.0\n")
    recipe = toy / "conf/r.yaml"
    recipe.write_text("defaults:\n  - pipe\n  - _self_\n\ncommon:\n  add: five\n")
    assert _plan(toy, recipe) == 2
    assert (f"{toy / 'conf/pipe.yaml'}:5: steps.dpo.add (= ${{common.add}}, set at {recipe}:6): "
            "expected a number, got 'five'") in _err(capsys)


def test_references_are_followed_to_the_value_and_through_a_section(tmp_path):
    """``place`` follows ``${a}`` -> ``${b}`` to the line that writes a value, maps a key below
    a referenced section, and blames an override the caller names instead of a file."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("base:\n  lr: x\nshared: ${base}\nsteps:\n  s:\n    opts: ${shared}\n")

    def placed(*overrides):
        err = ConfigError("steps.s.opts.lr: expected a number, got 'x'", key="steps.s.opts.lr")
        return place(err, recipe, list(overrides)).message

    assert placed() == (f"{recipe}:6: steps.s.opts.lr (= ${{shared}}.lr, set at {recipe}:2): "
                        "expected a number, got 'x'")
    assert "(= ${shared}.lr, set by override 'base.lr=x')" in placed("base.lr=x")
    assert "(=" not in placed("steps.s.opts.lr=x")     # the command line gave the value itself


def test_a_recipe_that_is_not_yaml_is_refused_by_name(toy, capsys):
    recipe = toy / "conf/chain2.yml"
    shutil.copy(toy / "conf/chain.yaml", recipe)
    assert _plan(toy, recipe) == 2
    err = _err(capsys)
    assert f"{recipe}: a recipe must be a .yaml file" in err
    assert f"mv {recipe} {toy / 'conf/chain2.yaml'}" in err


def test_a_group_not_in_the_defaults_list_needs_a_plus(toy, capsys):
    (toy / "conf/extra").mkdir()
    (toy / "conf/extra/a.yaml").write_text("x: 1\n")
    assert _plan(toy, toy / "conf/chain.yaml", "extra=a") == 2
    assert "add it with +extra=a" in _err(capsys)
    assert _plan(toy, toy / "conf/chain.yaml", "+extra=a") == 0


@pytest.mark.parametrize("value, cause", [("0.1,", "an empty item in a comma list?"),
                                          ("0.1,,0.2", "an empty item in a comma list?"),
                                          ("{a: 1", "an unclosed '{'?")])
def test_a_sweep_value_that_does_not_parse_says_why_in_words(toy, capsys, value, cause):
    assert _plan(toy, toy / "conf/chain.yaml", "-m", f"steps.dpo.add={value}") == 2
    err = _err(capsys)
    assert f"override 'steps.dpo.add={value}': not a valid value ({cause}); Hydra: " in err
    assert "expecting" not in err and "BRACKET_OPEN" not in err
    assert "key=a,b,c" in err and "\"key='a,b'\"" in err


def test_a_bad_key_is_not_called_a_bad_value(toy, capsys):
    assert _plan(toy, toy / "conf/chain.yaml", "steps..dpo=1") == 2
    assert "override 'steps..dpo=1': not a valid override;" in _err(capsys)


@pytest.mark.parametrize("overrides", [["-m", "steps.dpo.add=0.1,0.2", "steps.dpo.add=0.3,0.4"],
                                       ["steps.dpo.add=0.1", "+steps.dpo.add=0.3"]])
def test_a_key_given_twice_is_refused(toy, capsys, overrides):
    assert _plan(toy, toy / "conf/chain.yaml", *overrides) == 2
    err = _err(capsys)
    assert "override steps.dpo.add is given twice" in err and "hint: keep one" in err


def test_a_deleted_key_may_be_added_again(toy, capsys):
    assert _plan(toy, toy / "conf/chain.yaml", "~steps.load", "+steps.load={stage: toy_gen, n: 3}",
                 "--json") == 0
    member = json.loads(capsys.readouterr().out)["members"][0]
    assert member["steps"][0]["step"] == "load"


@pytest.mark.parametrize("sweep", [[], ["-m", "scale=1,2"]])
def test_a_deleted_step_that_is_still_read_names_the_override(toy, capsys, sweep):
    recipe = toy / "conf/chain.yaml"
    assert _plan(toy, recipe, "~steps.load", *sweep) == 2
    err = _err(capsys)
    assert (f"{recipe}:15: steps.retrieve.inputs.numbers: reads step 'load', which the override "
            "'~steps.load' removed") in err
    assert "steps.retrieve.inputs.numbers=STEP" in err


def test_a_list_recipe_is_refused_as_not_a_mapping(toy, capsys):
    recipe = toy / "conf/y6.yaml"
    recipe.write_text("- a\n- b\n")
    assert _plan(toy, recipe) == 2
    assert f"{recipe}: a recipe must be a mapping (steps:, data:, ...), got a list" in _err(capsys)


@pytest.mark.parametrize("where", ["recipe", "group"])
def test_a_file_that_is_not_utf8_names_its_line_and_byte(toy, capsys, where):
    recipe = toy / "conf/chain.yaml"
    bad = recipe if where == "recipe" else toy / "conf/executor/latin.yaml"
    if where == "group":
        bad.write_bytes(b"a: 1\nname: caf\xe9\n")
    else:
        bad.write_bytes(recipe.read_bytes().replace(b"scale: 1.0", b"scale: 1.0 # caf\xe9"))
    line = bad.read_bytes().split(b"\xe9")[0].count(b"\n") + 1
    assert _plan(toy, recipe, *(["executor=latin"] if where == "group" else [])) == 2
    err = _err(capsys)
    assert f"{bad}:{line}:" in err and ": not UTF-8 text (byte 0xe9 at offset" in err
    assert "save the file as UTF-8" in err


def test_a_value_set_by_an_override_through_a_shared_section_names_the_override(toy, capsys):
    """The CLI passes each member's overrides down, so the command line, not the file that
    last wrote the value, is named."""
    (toy / "conf/pipe.yaml").write_text(STEPS.replace("add: 0.1", 'add: "${common.add}"')
                                        + "common:\n  add: 1.0\n")
    recipe = toy / "conf/r.yaml"
    recipe.write_text("defaults:\n  - pipe\n  - _self_\n")
    assert _plan(toy, recipe, "-m", "common.add=1.0,five") == 2
    assert ("steps.dpo.add (= ${common.add}, set by override 'common.add=five'): expected a "
            "number, got 'five'") in _err(capsys)


def test_a_stage_package_missing_from_the_current_directory_says_where_to_run(toy):
    """A fresh process in another directory (this one has imported ``tests`` already)."""
    import os
    import subprocess
    import sys

    recipe = toy / "conf/r.yaml"
    recipe.write_text(STEPS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "orchestrator", "plan", str(recipe),
                           "--runs-dir", str(toy / "runs")], cwd=toy, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    err = done.stderr.replace("\n", " ")
    assert "cannot import stage module 'tests.toy.stages'" in err
    assert (f"'tests' is looked up in the current directory and the recipe's project folder "
            f"({toy}): put tests/ there, or pip install it") in err


@pytest.mark.parametrize("body, expected", [
    ("  a.b: {stage: toy_gen, n: 4}\n",
     "steps.a.b: 'a.b' cannot be wired as a name (use letters, digits, _ and -; a '.' reads as "
     "STEP.OUTPUT)"),
    ("  load: {stag: toy_gen, n: 4}\n",
     "steps.load: expected a mapping with a 'stage' key; it has n, stag; did you mean 'stage' "
     "for 'stag'?"),
])
def test_a_step_name_that_cannot_be_wired_or_a_step_without_its_stage(toy, capsys, body,
                                                                      expected):
    recipe = toy / "conf/r.yaml"
    recipe.write_text("ragline:\n  imports: [tests.toy.stages]\nsteps:\n" + body)
    assert _plan(toy, recipe) == 2
    err = _err(capsys)
    assert expected in err and "hint:" in err


def test_a_typo_in_the_ragline_section_lists_its_keys_not_a_steps(toy, capsys):
    recipe = toy / "conf/settings.yaml"
    recipe.write_text(STEPS.replace("  imports:", "  max_paralel: 2\n  imports:"))
    assert _plan(toy, recipe) == 2
    err = _err(capsys)
    assert f"{recipe}:2: ragline.max_paralel: unknown key (did you mean 'max_parallel'?)" in err
    assert "imports, runs_dir" in err and "every step also takes" not in err
