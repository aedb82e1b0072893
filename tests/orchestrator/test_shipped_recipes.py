"""A shipped recipe is found by name (or by its conf/ path) from any directory, so a user runs
the demo on their own data from a folder of their own; a recipe of their own with that name wins,
and a misspelt name lists the shipped ones."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigError
from orchestrator.recipe import find_recipe
from tests.conftest import REPO, rag


def test_a_shipped_recipe_is_found_from_a_folder_of_ones_own(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shipped = REPO / "conf" / "dynamicrag_demo.yaml"
    assert find_recipe("dynamicrag_demo") == shipped
    assert find_recipe("conf/dynamicrag_demo.yaml") == shipped
    assert rag("plan", "dynamicrag_demo", runs=tmp_path / "runs") == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert (f"note: no recipe dynamicrag_demo in {tmp_path}: using the shipped {shipped} "
            "(rag cp dynamicrag_demo copies it here, to edit)") in out
    assert "32 to run" in out


def test_a_recipe_of_ones_own_with_the_same_name_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    mine = tmp_path / "conf" / "dynamicrag_demo.yaml"
    mine.write_text("steps: {}\n")
    assert find_recipe("dynamicrag_demo") == mine
    assert find_recipe("conf/dynamicrag_demo.yaml") == mine


def test_a_misspelt_name_lists_the_shipped_recipes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        find_recipe("dynamicrag_dmeo")
    assert e.value.message == "recipe 'dynamicrag_dmeo' not found (did you mean 'dynamicrag_demo'?)"
    assert f"shipped recipes ({REPO / 'conf'}): dpa_rag_demo, dpa_rag_llama3, " in e.value.hint
