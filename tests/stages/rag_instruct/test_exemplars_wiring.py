"""``rag plan`` refuses an ``exemplars`` step that wires both ways in or neither (the stage would
stop with "wire exactly one of ..." only when it runs), naming the step and the fix."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO, rag

DEMO = str(REPO / "conf" / "rag_instruct_demo.yaml")


@pytest.fixture
def plan(tmp_path, monkeypatch, capsys):
    """``plan(*overrides) -> (exit code, stderr)`` of ``rag plan DEMO ... --check``."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("OPENAI_API_KEY", "not-used")   # synthesize's endpoint key: not this test's
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "runs" / "cache"))

    def run(*overrides: str) -> tuple[int, str]:
        capsys.readouterr()
        code = rag("plan", DEMO, *overrides, "--check", runs=tmp_path / "runs")
        return code, capsys.readouterr().err
    return run


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps([{"context": [{"id": "kb00001", "title": "T", "text": "x"}],
                                 "source": "alpaca", "example_question": "Name a river.",
                                 "task": "Single-Doc Answer"}]))
    return path


def test_default_recipe_and_released_exemplars_with_a_file_plan(plan, sample):
    assert plan() == (0, "")
    assert plan("+rag_instruct=released_exemplars", f"data.exemplars={sample}") == (0, "")


def test_released_exemplars_without_a_file_is_refused_by_the_plan(plan):
    code, err = plan("+rag_instruct=released_exemplars")
    assert code == 2
    assert "steps.exemplars: wire exactly one of inputs.retrieved" in err
    assert "neither is wired" in err and "data.exemplars=/path/to/file" in err


def test_neither_input_wired_is_refused_naming_the_step_and_the_file_override(plan):
    code, err = plan("steps.exemplars.inputs.retrieved=null")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2
    assert lines[0].endswith("steps.exemplars: wire exactly one of inputs.retrieved (retrieved "
                             "exemplar questions) and inputs.released (an exemplar file); "
                             "neither is wired")
    assert lines[1] == ("  hint: to read an exemplar file, give its path: data.exemplars="
                        "/path/to/file (with +rag_instruct=released_exemplars); to retrieve, "
                        "wire inputs.retrieved")


def test_both_inputs_wired_is_refused(plan, sample):
    code, err = plan("+steps.exemplars.inputs.released=exemplar_file", f"data.exemplars={sample}")
    assert code == 2
    assert "steps.exemplars: wire exactly one of inputs.retrieved" in err and "both are wired" in err
    assert "hint: set inputs.retrieved: null to read the file" in err
