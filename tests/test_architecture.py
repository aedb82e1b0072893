"""The dependency direction: orchestrator/ knows nothing of stages/; stages/ uses only the public API."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_orchestrator_never_imports_stages():
    paths = list((REPO / "orchestrator").rglob("*.py"))
    assert len(paths) > 20
    for path in paths:
        bad = [n for n in _imports(path) if n == "stages" or n.startswith("stages.")]
        assert not bad, f"{path} imports {bad}"


def test_stages_import_only_the_public_api():
    paths = list((REPO / "stages").rglob("*.py"))
    assert len(paths) > 50
    for path in paths:
        bad = [n for n in _imports(path) if n.startswith("orchestrator") and
               n not in ("orchestrator.api", "orchestrator.errors")]
        assert not bad, f"{path} imports {bad}; use orchestrator.api"


def test_cli_help_imports_no_heavy_library():
    code = ("import sys; from orchestrator.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('torch', 'transformers', 'pyarrow', 'hydra', 'numpy') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_no_function_in_orchestrator_or_stages_is_over_80_lines():
    long = []
    for root in ("orchestrator", "stages"):
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 80:
                        long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines})")
    assert long == [], "split these into smaller steps: " + ", ".join(long)
