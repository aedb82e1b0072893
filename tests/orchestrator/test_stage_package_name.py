"""A module of the user's named like the installed stage package (`stages`) neither hides it
nor is silently hidden by it."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO, rag

RECIPE = """ragline:
  imports: [{module}]
steps:
  gen: {{stage: toy_gen, n: 4}}
  mul: {{stage: toy_map, inputs: {{numbers: gen}}, mul: 2}}
"""


def test_a_stages_py_beside_the_recipe_does_not_hide_the_installed_stages(toy, capsys):
    """Before: `rag plan` failed with "No module named 'stages.lib'; 'stages' is not a
    package", blaming ragline.imports, because the recipe's folder came first on the path."""
    project = toy / "proj"
    project.mkdir()
    (project / "stages.py").write_text("# the user's helpers\n")
    (project / "toy.yaml").write_text(RECIPE.format(module="tests.toy.stages"))
    # a process of its own (in this one the installed stages are imported already), run from
    # another folder than the repository, which holds them
    out = subprocess.run([sys.executable, "-m", "orchestrator", "plan", str(project / "toy.yaml"),
                          "--runs-dir", str(toy / "runs")], cwd=toy, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr


def test_a_module_of_ones_own_named_stages_is_refused_with_the_name_to_change(toy, capsys):
    project = toy / "proj"
    (project / "stages").mkdir(parents=True)
    (project / "stages" / "mine.py").write_text("")
    (project / "toy.yaml").write_text(RECIPE.format(module="stages.mine"))
    assert rag("plan", str(project / "toy.yaml"), runs=toy / "runs") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot import stage module 'stages.mine': 'stages' is the name of the installed " \
           "stage package" in err
    assert "hint: rename your module or folder 'stages' (my_stages, say)" in err
