"""DynamicRAG's reranker prompt (SEEDS 1.4): the model, as reranker, reads a query and numbered
passages and answers with the identifiers of the passages it needs, ``"[1], [3]"``, or ``"None"``.
The generator role's prompt is shared with the top-k baselines: :mod:`stages.lib.prompts`.

Fixes relative to the seed code:

* the reranker sees the passages in the generator's format (:func:`stages.lib.prompts.format_docs`,
  renumbered 1..k), in training and at inference;
* :func:`parse_selection` drops out-of-range and repeated ids instead of failing the whole item
  with an IndexError.

The system prompt is a paraphrase of the paper's prompt, not a copy.
"""

from __future__ import annotations

import re

from stages.lib.prompts import format_docs

RERANKER_SYSTEM = (
    "You are an expert at dynamically choosing document identifiers to answer a query.\n"
    "You will be given documents, each identified by a number in square brackets, "
    "such as [1], [2].\n"
    "Output only the identifiers of the documents that contain information needed to answer "
    "the query.\n"
    "Stop adding identifiers as soon as the documents you selected together are enough to "
    "answer the query.\n"
    'If no document is needed to answer the query, output "None".\n'
    'Write the identifiers as a comma-separated list, such as [1], [2], or write "None".\n'
    "Output only the identifiers, without explanations or any other text."
)
"""P1: the reranker's system prompt."""

_SELECTION_ID = re.compile(r"\[(\d+)\]")


def reranker_messages(question: str, docs: list[dict]) -> list[dict]:
    """Chat messages asking the reranker which of ``docs`` it needs.

    >>> m = reranker_messages("who?", [{"title": "A", "text": "a."}])
    >>> [x["role"] for x in m], m[1]["content"]
    (['system', 'user'], 'Query: who?\\n\\nRetrieved Content:\\n1. Topic: A\\nContent: a.')
    """
    return [{"role": "system", "content": RERANKER_SYSTEM},
            {"role": "user", "content": f"Query: {question}\n\n{format_docs(docs)}"}]


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
