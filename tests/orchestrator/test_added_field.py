"""``added(default)``: a field added to a stage after its results were cached leaves the cache
key alone while it holds its default, so upgrading ragline does not redo the work; any other
value is keyed as usual. A plain new field (the contrast) changes every key of the stage."""

from __future__ import annotations

import json

import pytest
from tests.conftest import REPO, rag_process

BEFORE = """
from dataclasses import dataclass
from orchestrator.api import Metrics, stage

class Out(Metrics):
    pass

@dataclass
class Cfg:
    n: int = 3

@stage("grow", version=1)
def grow(cfg: Cfg) -> Out:
    return {"value": cfg.n}
"""

AFTER = """
from dataclasses import dataclass
from orchestrator.api import Metrics, added, stage

class Out(Metrics):
    pass

@dataclass
class Cfg:
    n: int = 3
    scale: float = FIELD

@stage("grow", version=1)
def grow(cfg: Cfg) -> Out:
    return {"value": cfg.n * cfg.scale}
"""

RECIPE = """ragline: {imports: [growing]}
steps:
  g: {stage: grow}
"""


def _run(tmp_path, *overrides: str) -> dict:
    proc = rag_process("run", str(tmp_path / "r.yaml"), *overrides, "--no-progress",
                       "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path,
                       env={"PYTHONPATH": f"{REPO}:{tmp_path}"})
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    return json.loads((tmp_path / "runs" / "latest" / "status.json").read_text())


@pytest.mark.parametrize("field, cached", [("added(1.0)", True), ("1.0", False)])
def test_a_field_added_later_keeps_the_cache_only_when_declared_added(tmp_path, field, cached):
    (tmp_path / "r.yaml").write_text(RECIPE)
    (tmp_path / "growing.py").write_text(BEFORE)
    assert _run(tmp_path)["steps"]["g"]["cache"] == "miss"
    (tmp_path / "growing.py").write_text(AFTER.replace("FIELD", field))   # the upgrade
    status = _run(tmp_path)
    assert status["steps"]["g"]["cache"] == ("hit" if cached else "miss")
    assert status["metrics"]["g"]["value"] == 3
    status = _run(tmp_path, "steps.g.scale=2.0")                           # not the default: keyed
    assert status["steps"]["g"]["cache"] == "miss" and status["metrics"]["g"]["value"] == 6.0
