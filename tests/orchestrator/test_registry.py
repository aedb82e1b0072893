"""The registry: stage names follow the package rule, a recipe imports only the stage packages
its names need, and ``rag stages`` groups stages by package."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import REPO, rag

from orchestrator.api import Table
from orchestrator.errors import ConfigError
from orchestrator.registry import REGISTRY, get_stage, package_of, stage


class Rows(Table):
    schema = None


@dataclass
class Cfg:
    n: int = 1


def _fn(module: str):
    def f(rows: Rows, cfg: Cfg) -> Rows:
        return rows

    f.__module__ = module
    f.__qualname__ = f"test_registry_{module.replace('.', '_')}"
    return f


def test_package_of():
    assert package_of("retrieve") == "common"
    assert package_of("dynamicrag.label") == "dynamicrag"


def test_a_recipe_stage_must_carry_its_recipe_prefix():
    with pytest.raises(TypeError, match=r"stage 'label' .*: a stage in stages.dynamicrag must be "
                                        r"named 'dynamicrag.<name>'; rename it 'dynamicrag.label'"):
        stage("label")(_fn("stages.dynamicrag.newlabel"))
    with pytest.raises(TypeError, match=r"a stage in stages.selfrag must be named 'selfrag.<name>'"):
        stage("dynamicrag.critic")(_fn("stages.selfrag.critic"))
    assert "label" not in REGISTRY and "dynamicrag.critic" not in REGISTRY


def test_a_common_stage_has_a_plain_name():
    with pytest.raises(TypeError, match=r"a stage in stages.common has a plain name; rename it "
                                        r"'fuse2' or move it to stages/dynamicrag/"):
        stage("dynamicrag.fuse2")(_fn("stages.common.fuse2"))


def test_modules_outside_the_stage_packages_name_freely():
    name = "test_registry.free"
    try:
        stage(name)(_fn("my_project.stages"))
        assert REGISTRY[name].module == "my_project.stages"
    finally:
        REGISTRY.pop(name, None)


def _imported_after(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_recipe_imports_only_the_packages_its_stage_names_need():
    got = _imported_after(
        "import json, sys; from orchestrator.registry import load_stages, imported_module_files; "
        "r = load_stages([], ['dynamicrag.label']); "
        "print(json.dumps({'common': 'stages.common' in sys.modules, "
        "'dynamicrag': 'stages.dynamicrag' in sys.modules, 'names': sorted(r), "
        "'files': imported_module_files()}))")
    assert got["dynamicrag"] and not got["common"]
    assert "dynamicrag.label" in got["names"] and "retrieve" not in got["names"]
    assert any(f.endswith("stages/dynamicrag/label.py") for f in got["files"])
    got = _imported_after(
        "import json, sys; from orchestrator.registry import get_stage; get_stage('retrieve', 'x'); "
        "print(json.dumps({'common': 'stages.common' in sys.modules, "
        "'dynamicrag': 'stages.dynamicrag' in sys.modules}))")
    assert got == {"common": True, "dynamicrag": False}


def test_an_old_unprefixed_name_suggests_the_recipe_stage():
    with pytest.raises(ConfigError, match=r"steps.label.stage: unknown stage 'label' \(did you mean "
                                          r"'dynamicrag.label'"):
        get_stage("label", "steps.label.stage")


def test_rag_stages_groups_by_package(capsys):
    assert rag("stages") == 0
    out = capsys.readouterr().out  # rag stages reports on stdout
    assert out.index("stages.common") < out.index("retrieve v") < out.index("stages.dynamicrag") \
        < out.index("dynamicrag.label v")
    assert rag("stages", "--json") == 0
    infos = {i["name"]: i for i in json.loads(capsys.readouterr().out)}
    assert infos["dynamicrag.label"]["package"] == "stages.dynamicrag"
    assert infos["retrieve"]["package"] == "stages.common"


def test_multi_gpu_mode_is_declared_and_checked():
    name = "test_registry.tp"
    try:
        stage(name, multi_gpu="one_process")(_fn("my_project.tp"))
        assert REGISTRY[name].multi_gpu == "one_process"
    finally:
        REGISTRY.pop(name, None)
    with pytest.raises(TypeError, match=r"multi_gpu must be one of \('ranks', 'one_process'\), "
                                        r"got 'tp'"):
        stage("test_registry.bad", multi_gpu="tp")(_fn("my_project.bad"))


def test_rag_stages_shows_choices_and_ranges(capsys):
    assert rag("stages", "dynamicrag.infer") == 0
    out = capsys.readouterr().out
    assert "mode: one of ['dynamic', 'windowed'] = 'dynamic'" in out
    assert "num_docs: int >= 1 = 40" in out


def test_rag_stages_prints_a_file_and_line_as_written(capsys):
    """``pipeline.yaml:100:`` stays a file and line (rich read ``:100:`` as an emoji code)."""
    from tests.conftest import REPO

    lines = (REPO / "conf" / "rag_instruct" / "pipeline.yaml").read_text().splitlines()
    line = lines.index("  format:") + 1          # 100 when this test was written
    assert rag("stages", "rag_instruct.format") == 0
    out = capsys.readouterr().out
    assert f"conf/rag_instruct/pipeline.yaml:{line}:" in out and "\U0001f4af" not in out


def test_a_recipe_with_its_own_modules_runs_with_the_repository_on_pythonpath(tmp_path):
    """The installed ``rag`` script, run from the repository with ``PYTHONPATH`` naming it (as
    bench/bench_orchestrator.py runs it): the toy recipe's project folder, ``tests/toy``, went
    onto the path ahead of the repository, and its ``stages.py`` hid the shipped ``stages``
    package: "cannot import stage module 'tests.toy.stages': No module named 'stages.lib';
    'stages' is not a package"."""
    import os
    import shutil

    script = shutil.which("rag", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("no rag script beside this Python (the project is not installed)")
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGLINE_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([script, "run", "tests/toy/conf/chain.yaml", "--runs-dir",
                           str(tmp_path / "runs"), "--no-progress", "--until", "retrieve"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
