"""Every worked example in a docstring of `stages/` and `orchestrator/` is true.

Formulas are pure functions with a worked example in their docstring; this runs each example
(Python's doctest), module by module, so an example that no longer matches its code fails here
instead of misleading its reader. Every module imports without the optional packages (vllm is
imported inside the functions that need it), so none is skipped.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.conftest import REPO


def _modules() -> list[str]:
    names = []
    for package in ("orchestrator", "stages"):
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__main__":     # runs the CLI when imported
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
