"""The recipe examples in ``rag plan --help`` and ``rag run --help`` work: each plans (a ``rag
run`` example as the ``rag plan`` of the same recipe and overrides), with no recipe error."""

from __future__ import annotations

import shlex

import pytest

from orchestrator.cli import plan as plan_cli
from orchestrator.cli import run as run_cli
from tests.conftest import REPO, rag


def _examples(text: str, command: str) -> list[list[str]]:
    """The argument lists of the ``rag <command>`` lines (comments, pipes and redirects cut off;
    a line ending in a backslash joined to the next)."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.strip().split("  #")[0].split(" | ")[0].split(" > ")[0]
        if line.startswith(f"rag {command} "):
            out.append(shlex.split(line)[2:])
    return out


EXAMPLES = ([("plan", args) for args in _examples(plan_cli.EXAMPLES, "plan")]
            + [("run", args) for args in _examples(run_cli.EXAMPLES, "run")])


def test_the_examples_are_found():
    assert len(EXAMPLES) >= 10
    assert ["conf/dynamicrag_llama3.yaml", "retrieval.k=100"] in [a for _, a in EXAMPLES]


@pytest.mark.parametrize("command, args", EXAMPLES, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_help_example_plans_without_a_recipe_error(command, args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    args = ["--force" if a == "--only" else a for a in args]   # plan checks the step name too
    code = rag("plan", *args, "--json", runs=tmp_path / "runs")
    err = capsys.readouterr().err
    assert "error:" not in err, err
    assert code == (2 if "--check" in args else 0)   # --check: the llama3 data is not here
