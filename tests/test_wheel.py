"""A wheel (``pip install git+URL`` builds one) carries the shipped conf/ beside the stages, so a
ragline installed without a checkout finds its recipes, config groups and prompts: built here,
installed into a fresh virtual environment (its dependencies borrowed from this one), and asked
where its shipped conf/ is."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from tests.conftest import REPO


def _isolation() -> list[str]:
    """Build with this environment's setuptools when it is new enough for pyproject.toml
    (no download); else in pip's isolated build environment, as ``pip install`` does."""
    try:
        import setuptools
        from packaging.version import Version
    except ImportError:
        return []
    return ["--no-build-isolation"] if Version(setuptools.__version__) >= Version("77") else []


def test_the_wheel_ships_conf_beside_the_stages_and_finds_it(tmp_path):
    src = tmp_path / "src"   # a copy of what the wheel is built from: no build/ left in the repo
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    for name in ("orchestrator", "stages", "conf"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", *_isolation(),
                    "-q", "-w", str(tmp_path / "dist")], check=True, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("ragline-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(p.relative_to(REPO)) for p in (REPO / "conf").rglob("*") if p.is_file()}
    assert shipped and shipped <= names
    assert "stages/__init__.py" in names and not any(n.startswith("tests/") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                                "get_paths()['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    with zipfile.ZipFile(wheel) as z:   # what pip does with a pure-Python wheel: unpack it
        z.extractall(site)
    # the dependencies (hydra, pydantic, ...) from this environment, after the wheel's own files
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = subprocess.run([str(python), "-c", "from orchestrator.locate import shipped_conf; "
                          "from orchestrator.recipe import find_recipe; "
                          "print(shipped_conf()); print(find_recipe('dynamicrag_demo'))"],
                         check=True, capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert out == [str(site / "conf"), str(site / "conf" / "dynamicrag_demo.yaml")]
