"""README "Performance": a no-op rerun reads the remembered composition and DAG and imports no
stage module, no pyarrow and no torch; a rerun with a changed setting does import them (the
control that shows this test can fail)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

RECIPE = """ragline:
  imports: [tests.toy.stages]
steps:
  load: {stage: load_data, num_entities: 4, num_train: 4, num_eval: 2}
  gen:  {stage: toy_gen, n: 4}
  mul:  {stage: toy_map, inputs: {numbers: gen}, mul: 2.0}
"""

# Runs the CLI in a fresh interpreter, then reports what the run imported.
RUN = """import json, sys
from orchestrator.cli import main
code = main(sys.argv[1:])
heavy = [m for m in ("pyarrow", "torch") if m in sys.modules]
stages = sorted(m for m in sys.modules if m == "stages" or m.startswith(("stages.", "tests.toy")))
print(json.dumps({"code": code, "heavy": heavy, "stages": stages}))
"""


def _run(tmp_path, *overrides: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGLINE_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", RUN, "run", str(tmp_path / "conf" / "r.yaml"),
                          *overrides, "--runs-dir", str(tmp_path / "runs"), "--no-progress"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_noop_rerun_imports_no_stage_module_pyarrow_or_torch(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "r.yaml").write_text(RECIPE)
    first = _run(tmp_path)
    assert first["code"] == 0
    assert "pyarrow" in first["heavy"] and "stages.common.load" in first["stages"]

    again = _run(tmp_path)
    assert again == {"code": 0, "heavy": [], "stages": []}
    status = json.loads((tmp_path / "runs" / "latest" / "status.json").read_text())
    assert {s["cache"] for s in status["steps"].values()} == {"hit"}

    changed = _run(tmp_path, "steps.mul.mul=3")   # the control: a step to compute
    assert "pyarrow" in changed["heavy"] and "tests.toy.stages" in changed["stages"]
