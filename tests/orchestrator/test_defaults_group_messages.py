"""A misspelled config group or option in a recipe's ``defaults:`` list (``- executr: local``,
``- executor: locall``): one line at the entry's file:line with what was expected and the
closest name, not Hydra's "In 'r': Could not find 'executr/local'"."""

from __future__ import annotations

import shutil

from orchestrator.locate import shipped_conf
from tests.conftest import rag

SHIPPED = shipped_conf()


def _plan(toy, recipe, *overrides) -> str:
    assert rag("plan", str(recipe), *overrides, runs=toy / "runs") == 2
    return recipe


def _recipe(toy, entry: str):
    recipe = toy / "conf/r.yaml"
    recipe.write_text(f"defaults:\n  - _self_\n  - {entry}\n\nragline:\n  imports: "
                      "[tests.toy.stages]\n\nsteps:\n  load: {stage: toy_gen, n: 8}\n")
    return recipe


def test_a_misspelled_group_names_the_line_the_groups_and_the_closest(toy, capsys):
    recipe = _plan(toy, _recipe(toy, "executr: local"))
    err = capsys.readouterr().err
    assert (f"error: {recipe}:3: defaults: 'executr: local': no config group 'executr' in conf/ "
            f"(or the shipped {SHIPPED}) (no folder executr/) (did you mean 'executor'?); "
            "expected a config group there: dpa_rag, dynamicrag, executor, ") in err
    assert "hint: write - executor: local" in err
    assert "Could not find" not in err


def test_a_misspelled_option_names_the_line_the_options_and_the_closest(toy, capsys):
    recipe = _plan(toy, _recipe(toy, "executor: locall"))
    err = capsys.readouterr().err
    assert (f"error: {recipe}:3: defaults: 'executor: locall': config group executor/ has no "
            "option 'locall' (no executor/locall.yaml) (did you mean 'local'?); expected one "
            "of: isolated, local, ray, slurm\n") in err   # the toy's options and the shipped ones
    assert "hint: write - executor: local" in err


def test_a_recipe_copied_without_its_groups_composes_with_the_shipped_ones(toy, tmp_path):
    """Groups missing next to the recipe are looked up in the shipped conf/ (Hydra's search
    path), as a shipped recipe copied into a folder of one's own needs (rag cp)."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(toy / "conf/chain.yaml", alone / "chain.yaml")
    assert rag("plan", str(alone / "chain.yaml"), runs=toy / "runs") == 0


def test_without_shipped_groups_a_recipe_alone_is_told_to_keep_them_together(
        toy, capsys, tmp_path, monkeypatch):
    """With no shipped conf/ to fall back on, a recipe copied out of its conf/ alone."""
    import orchestrator.locate as locate

    monkeypatch.setattr(locate, "shipped_conf", lambda: None)
    alone = tmp_path / "alone"
    alone.mkdir()
    recipe = alone / "chain.yaml"
    shutil.copy(toy / "conf/chain.yaml", recipe)
    _plan(toy, recipe)
    err = capsys.readouterr().err
    assert (f"error: {recipe}:6: defaults: 'executor: local': no config group 'executor' in "
            "alone/ (no folder executor/); alone/ has no config groups") in err
    assert "keep the recipe in a conf/ folder that holds them" in err


def test_a_choice_from_the_command_line_keeps_the_override_message(toy, capsys):
    """The defaults line says 'local', so it is not blamed for the command line's 'lokal'."""
    _plan(toy, toy / "conf/chain.yaml", "executor=lokal")
    err = capsys.readouterr().err
    assert "chain.yaml:6" not in err and "(did you mean 'local'?)" in err


def test_the_line_blamed_is_the_entry_of_the_misspelled_group(toy, capsys):
    """Two entries with the same option ('local'): the error points at the one whose group is
    unknown, not at the first that names the option."""
    recipe = toy / "conf/r.yaml"
    recipe.write_text("defaults:\n  - _self_\n  - executor: local\n  - hw: local\n\nragline:\n"
                      "  imports: [tests.toy.stages]\n\nsteps:\n  load: {stage: toy_gen, n: 8}\n")
    _plan(toy, recipe)
    err = capsys.readouterr().err
    assert f"error: {recipe}:4: defaults: 'hw: local': no config group 'hw'" in err
