"""RAG-Instruct's training prompts (SEEDS 4.4): seven wrappers, one drawn at random for each
example, and the documents rendered in a numbering style drawn at random.

The wrapper file (``conf/prompts/rag_instruct/wrappers.yaml``, our own wording) has::

    wrappers:             # templates with {documents} and {question}; one drawn per example
      - "..."
    no_documents: "..."   # the template of an example without documents: {question}
    document_styles:      # how one document is written ({i}: from 1, {title}, {text}); one drawn
      - "[{i}] {text}"    #   per example, the documents joined by newlines
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from orchestrator.api import ConfigError
from stages.lib.prompts import placeholders

SHIPPED = "conf/prompts/rag_instruct/wrappers.yaml"   # the paper's seven wrappers, our wording


@dataclass(frozen=True)
class Wrappers:
    wrappers: tuple[str, ...]
    no_documents: str
    document_styles: tuple[str, ...]


def load_wrappers(path: str | Path) -> Wrappers:
    """The wrapper file at ``path``; a one-line ``ConfigError`` naming the file and key otherwise."""
    from stages.lib.yaml_file import read_yaml

    try:   # a syntax error or a byte that is not UTF-8: named with its line
        data = read_yaml(path, "wrapper file", f"fix the YAML there; {SHIPPED} is an example")
    except OSError as e:
        raise ConfigError(f"wrapper file {path}: cannot be read ({e.strerror})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"wrapper file {path}: expected the keys wrappers, no_documents, "
                          "document_styles")
    wrappers = _templates(data, "wrappers", {"documents", "question"}, set(), path)
    styles = _templates(data, "document_styles", {"text"}, {"i", "title"}, path)
    no_docs = data.get("no_documents")
    if not isinstance(no_docs, str) or "question" not in placeholders(no_docs):
        raise ConfigError(f"wrapper file {path}: 'no_documents' must be a template with "
                          "{question}")
    return Wrappers(tuple(wrappers), no_docs, tuple(styles))


def _templates(data: dict, key: str, needs: set[str], may: set[str], path) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise ConfigError(f"wrapper file {path}: '{key}' must be a non-empty list of templates")
    for j, template in enumerate(value):
        if not isinstance(template, str):
            raise ConfigError(f"wrapper file {path}: {key}[{j}] is {template!r}, not a template "
                              "(quote it to make it text)")
    known = needs | may
    for j, template in enumerate(value):
        fields = placeholders(template)
        if not needs <= fields or not fields <= known:
            raise ConfigError(f"wrapper file {path}: {key}[{j}] must use "
                              f"{', '.join('{' + n + '}' for n in sorted(needs))}"
                              f"{' and no other field' if fields - known else ''} (it uses "
                              f"{', '.join('{' + n + '}' for n in sorted(fields)) or 'none'})")
    return value


def render(w: Wrappers, question: str, docs: list[dict], rng: random.Random) -> str:
    """The user prompt of one training example: a wrapper and a document style drawn by ``rng``.

    >>> w = Wrappers(("Docs:\\n{documents}\\nQ: {question}",), "Q: {question}", ("[{i}] {text}",))
    >>> print(render(w, "Who?", [{"title": "T", "text": "Ann."}, {"title": "U", "text": "Bo."}],
    ...              random.Random(0)))
    Docs:
    [1] Ann.
    [2] Bo.
    Q: Who?
    >>> render(w, "Who?", [], random.Random(0))
    'Q: Who?'
    """
    if not docs:
        return w.no_documents.format(question=question)
    template = rng.choice(w.wrappers)
    style = rng.choice(w.document_styles)
    documents = "\n".join(style.format(i=i, title=d.get("title") or "", text=d["text"])
                          for i, d in enumerate(docs, start=1))
    return template.format(documents=documents, question=question)
