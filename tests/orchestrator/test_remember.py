"""The one speed layer: a remembered composition and DAG, valid while its files are unchanged."""

from __future__ import annotations

import pytest

from orchestrator.recipe import compose


def test_remembered_composition_follows_its_files(toy, tmp_path, monkeypatch):
    """One rule: an entry is used while every file it was built from is unchanged."""
    import orchestrator.remember as remember

    recipe, state = toy / "conf/chain.yaml", tmp_path / "state"
    members, dags = remember.load(recipe, ["scale=3"], False, state)
    calls = []
    monkeypatch.setattr(remember, "compose", lambda *a: calls.append(a) or compose(*a))
    again, dags2 = remember.load(recipe, ["scale=3"], False, state)
    assert calls == [] and again[0].config == members[0].config
    assert dags2[0].steps["rerank"].config == dags[0].steps["rerank"].config
    recipe.write_text(recipe.read_text().replace("scale: 1.0", "scale: 1.0\nother: 2"))
    assert "other" in remember.load(recipe, ["scale=3"], False, state)[0][0].config
    assert len(calls) == 1
    (toy / "conf" / "executor" / "local.yaml").touch()  # any file of the config directory
    os_stat_before = len(calls)
    remember.load(recipe, ["scale=3"], False, state)
    assert len(calls) == os_stat_before + 1
    next(state.glob("*.json")).write_text("{trunc")  # a damaged entry is a miss, not a crash
    assert remember.load(recipe, ["scale=3"], False, state)[0][0].config["other"] == 2


def test_plan_in_a_fresh_directory_writes_nothing(toy, tmp_path, monkeypatch, capsys):
    """`rag plan` / `rag dag` where no runs directory exists leave none behind (nothing is
    remembered there, and a recipe that reads sources does not save their hashes); once a run
    has made one, plans are remembered in it."""
    from tests.conftest import REPO, rag

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAGLINE_CACHE")
    recipe = str(toy / "conf" / "chain.yaml")
    assert rag("plan", recipe) == 0 and rag("dag", recipe) == 0
    assert rag("plan", str(REPO / "conf" / "dynamicrag_demo.yaml")) == 0   # 4 prompt sources
    assert not (tmp_path / "runs").exists()
    (tmp_path / "runs").mkdir()
    assert rag("plan", recipe) == 0
    assert list((tmp_path / "runs" / ".state" / "remembered").glob("*.json"))


def test_first_run_remembers_its_composition(toy, tmp_path, monkeypatch):
    """`rag run` in a fresh directory remembers the composition it makes, so its first no-op
    rerun composes nothing."""
    import orchestrator.remember as remember
    from tests.conftest import rag

    recipe, runs = str(toy / "conf" / "chain.yaml"), tmp_path / "fresh" / "runs"
    assert rag("run", recipe, "--no-progress", runs=runs) == 0
    calls = []
    monkeypatch.setattr(remember, "compose", lambda *a: calls.append(a) or compose(*a))
    assert rag("run", recipe, "--no-progress", runs=runs) == 0
    assert calls == []


def test_a_recipe_beside_its_runs_stays_remembered(toy, tmp_path, monkeypatch):
    """A recipe kept in the folder that holds its runs/ (and cache): the run records a run
    writes are not files the entry depends on, so the next no-op rerun composes nothing. (It
    once depended on every file under runs/, and recomposed on every rerun: 0.9 s, not 0.25.)"""
    import shutil

    import orchestrator.remember as remember
    from tests.conftest import rag

    flat = tmp_path / "flat"
    shutil.copytree(toy / "conf", flat)
    monkeypatch.setenv("RAGLINE_CACHE", str(flat / "cache"))
    recipe, runs = str(flat / "chain.yaml"), flat / "runs"
    assert rag("run", recipe, "--no-progress", runs=runs) == 0        # runs/ and cache/ filled
    assert rag("run", recipe, "scale=2", "--no-progress", runs=runs) == 0   # remembered now
    calls = []
    monkeypatch.setattr(remember, "compose", lambda *a: calls.append(a) or compose(*a))
    assert rag("run", recipe, "scale=2", "--no-progress", runs=runs) == 0
    assert calls == []


@pytest.mark.parametrize("resolver", ["${oc.env:TOY_NOTE,chain}", "${now:%Y-%m-%d}"])
def test_nothing_is_remembered_when_the_config_reads_the_environment_or_the_clock(
        resolver, toy, tmp_path):
    """The same command can compose to another config when the environment or the clock moves,
    so its composition is never remembered; without the resolver, it is."""
    from tests.conftest import rag

    recipe, runs = toy / "conf" / "chain.yaml", tmp_path / "runs"
    plain = recipe.read_text()
    recipe.write_text(plain.replace("scale: 1.0", f"scale: 1.0\nnote: '{resolver}'"))
    for _ in range(2):
        assert rag("run", str(recipe), "--no-progress", runs=runs) == 0
    assert not list((runs / ".state" / "remembered").glob("*.json"))
    recipe.write_text(plain)
    assert rag("run", str(recipe), "--no-progress", runs=runs) == 0
    assert list((runs / ".state" / "remembered").glob("*.json"))


def test_a_package_installed_or_upgraded_beside_the_libraries_is_a_miss(toy, tmp_path,
                                                                         monkeypatch):
    """Before: the plan notes of a remembered recipe outlived a `pip install -U trl`, so
    `rag plan` showed the GPU memory estimate of the TRL that was there before."""
    import os

    import orchestrator.remember as remember

    site = tmp_path / "site"
    (site / "fakelib").mkdir(parents=True)
    (site / "fakelib" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(remember, "LIBRARIES", (*remember.LIBRARIES, "fakelib"))
    recipe, state = toy / "conf/chain.yaml", tmp_path / "state"
    remember.load(recipe, [], False, state)
    calls = []
    monkeypatch.setattr(remember, "compose", lambda *a: calls.append(a) or compose(*a))
    remember.load(recipe, [], False, state)
    assert calls == []
    (site / "trl-1.16.0.dist-info").mkdir()         # what an upgrade does beside the others
    st = site.stat()
    os.utime(site, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # past coarse mtime clocks
    remember.load(recipe, [], False, state)
    assert len(calls) == 1
