"""A code block in README.md or docs/*.md whose first line names a source file
(``# stages/common/retrieve.py``) shows that file's code: its code lines, comments and a trailing
``...`` aside, occur in the file in the same order. A changed signature fails here, not in a
reader's hands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

BLOCK = re.compile(r"^```python\n# ((?:stages|orchestrator)/\S+\.py)\b[^\n]*\n(.*?)^```", re.M | re.S)


def _code_lines(text: str) -> list[str]:
    """Lines without comments, indentation or a trailing ``...``; blank and ``...`` lines dropped."""
    out = []
    for line in text.splitlines():
        line = re.sub(r"(^|\s+)#.*$", "", line).strip()
        line = re.sub(r"\s*\.\.\.$", "", line)
        if line:
            out.append(line)
    return out


def _snippets() -> list[tuple[str, str, str]]:
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    return [(str(doc.relative_to(REPO)), m.group(1), m.group(2))
            for doc in docs for m in BLOCK.finditer(doc.read_text())]


def test_the_labelled_snippets_are_found():
    assert {(doc, src) for doc, src, _ in _snippets()} >= {
        ("README.md", "stages/common/rerank.py"),
        ("docs/writing-stages.md", "stages/common/retrieve.py")}


@pytest.mark.parametrize("doc, source, code", _snippets(), ids=lambda v: str(v)[:40])
def test_snippet_matches_its_source_file(doc, source, code):
    real = _code_lines((REPO / source).read_text())
    assert _code_lines(code), f"the snippet of {source} in {doc} has no code lines"
    at = 0
    for line in _code_lines(code):
        try:
            at = real.index(line, at) + 1
        except ValueError:
            pytest.fail(f"{doc}: the snippet of {source} has {line!r}, which the file lacks "
                        "(or not in this order); update the snippet to the file")


def test_code_lines_drop_comments_indentation_and_ellipses():
    text = "# a label\n    x = 1  # a comment\n\n    ...\n  def f(a) -> B: ...\n"
    assert _code_lines(text) == ["x = 1", "def f(a) -> B:"]
