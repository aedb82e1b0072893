"""DynamicRAG's reranker role (SEEDS 1.4): the model reads a query and numbered passages and
answers with the identifiers of the passages it needs, ``"[1], [3]"``, or ``"None"``.

The wording is a prompt file, ``conf/prompts/dynamicrag/reranker.yaml`` (and ``generator.yaml``
for the generator role, shared with the top-k baselines through :mod:`stages.lib.prompts`); this
module builds the messages and reads the reranker's output format.

Fixes relative to the seed code:

* one passage format everywhere: ``"{i}. Topic: {title}\\nContent: {text}"`` numbered 1..k in
  the order given, and one separator (``"Query: {q}"`` + a blank line) in training and inference.
  The seeds used "Topic:" for BC/SFT and "Title: {title}." with the *original* ids for DPO
  sampling and inference, so the model saw a different format at test time;
* :func:`parse_selection` drops out-of-range and repeated ids instead of failing the whole item
  with an IndexError.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from stages.lib.prompts import Prompt, format_passages, load_prompt, messages

_SELECTION_ID = re.compile(r"\[(\d+)\]")


SHIPPED = Path(__file__).resolve().parents[2] / "conf" / "prompts" / "dynamicrag"
"""The prompt files shipped with the repository (our wording); recipes wire them as sources."""


class RolePrompts(NamedTuple):
    """The two roles' prompt files, loaded."""

    reranker: Prompt
    generator: Prompt


def shipped_prompts() -> RolePrompts:
    """The repository's reranker and generator prompts (for tests and examples)."""
    return RolePrompts(load_prompt(SHIPPED / "reranker.yaml"), load_prompt(SHIPPED / "generator.yaml"))


def reranker_messages(prompt: Prompt, question: str, docs: list[dict]) -> list[dict]:
    r"""Messages asking the reranker which of ``docs`` it needs (fields: ``question``,
    ``passages``).

    >>> p = Prompt(user="Query: {question}\n\n{passages}", system="Pick.",
    ...            passage="{i}. Topic: {title}\nContent: {text}",
    ...            passages="Retrieved Content:\n{passages}")
    >>> m = reranker_messages(p, "who?", [{"title": "A", "text": "a."}])
    >>> [x["role"] for x in m], m[1]["content"]
    (['system', 'user'], 'Query: who?\n\nRetrieved Content:\n1. Topic: A\nContent: a.')
    """
    return messages(prompt, question=question, passages=format_passages(prompt, docs))


def parse_selection(text: str, num_docs: int) -> list[int]:
    """Passage ids in a reranker output: ``[k]`` in order, first occurrence kept, 1..num_docs only.

    >>> parse_selection("[3], [1], [3], [9], [0]", num_docs=5)
    [3, 1]
    >>> parse_selection("None", num_docs=5), parse_selection("doc 2", num_docs=5)
    ([], [])
    """
    ids: list[int] = []
    for match in _SELECTION_ID.finditer(text or ""):
        k = int(match.group(1))
        if 1 <= k <= num_docs and k not in ids:
            ids.append(k)
    return ids


def format_selection(ids: list[int]) -> str:
    """A reranker target: ``"[1], [3]"``, or ``"None"`` for no passage.

    >>> format_selection([1, 3]), format_selection([])
    ('[1], [3]', 'None')
    """
    return ", ".join(f"[{i}]" for i in ids) if ids else "None"
