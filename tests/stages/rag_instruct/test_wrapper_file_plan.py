"""``rag plan`` checks the wrapper file (``prompts.wrappers``) before any step runs, as it does
the prompt files: a typo'd placeholder used to pass the plan and stop the run only at the
``format`` step, after synthesis and the noise retrieval."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, plan_checker

DEMO = str(REPO / "conf" / "rag_instruct_demo.yaml")
WRAPPERS = REPO / "conf" / "prompts" / "rag_instruct" / "wrappers.yaml"


@pytest.fixture
def plan(tmp_path, monkeypatch, capsys):
    """``plan(*overrides) -> (exit code, stdout + stderr)`` of ``rag plan DEMO ... --check``."""
    return plan_checker(DEMO, tmp_path, monkeypatch, capsys)


def test_a_wrapper_with_an_unknown_placeholder_is_refused_by_the_plan(plan, tmp_path):
    bad = tmp_path / "wrappers.yaml"
    head, body = WRAPPERS.read_text().split("\nwrappers:", 1)
    bad.write_text(head + "\nwrappers:" + body.replace("{question}", "{questoin}", 1))
    code, out = plan(f"prompts.wrappers={bad}")
    assert code == 2
    assert (f"steps.format.inputs.wrappers (source 'wrappers'): wrapper file {bad}: wrappers[0] "
            "must use {documents}, {question} and no other field (it uses {documents}, "
            "{questoin})") in out


def test_the_shipped_wrapper_file_passes_the_plan(plan):
    code, out = plan(f"prompts.wrappers={WRAPPERS}")
    assert code == 0 and "problem" not in out


@pytest.mark.parametrize("text, message", [
    ("wrappers:\n  - 5\nno_documents: 'Q: {question}'\ndocument_styles: ['{text}']\n",
     "wrappers[0] is 5, not a template (quote it to make it text)"),
    ("wrappers: ['{documents} {question}'\nno_documents: x\n",
     ".yaml:2:1: not valid YAML"),
])
def test_a_wrapper_file_item_or_syntax_error_is_named(plan, tmp_path, text, message):
    """An item that is no string was 'must be a non-empty list of templates' (the list was not
    empty); a YAML error had no line."""
    bad = tmp_path / "wrappers.yaml"
    bad.write_text(text)
    code, out = plan(f"prompts.wrappers={bad}")
    assert code == 2 and f"wrapper file {bad}" in out and message in out, out
