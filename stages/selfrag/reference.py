"""The ``reference`` teacher: the four Self-RAG judgments derived from gold annotations instead
of an LLM (for data with gold passage ids and answers, such as the CPU demo's knowledge base).

* retrieval need: [Retrieval] when the item has gold passages, else [No Retrieval];
* relevance of a passage: [Relevant] when its id is a gold passage id;
* support of the output by a passage: [Fully supported] when a gold answer occurs in it
  (normalised), [Partially supported] when the passage is relevant without it, else
  [No support / Contradictory];
* utility: [Utility:5] — the output is the gold answer itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from stages.lib.metrics.answer import normalize_answer
from stages.selfrag.tokens import (FULLY, IRRELEVANT, NO_RETRIEVAL, NO_SUPPORT, PARTIALLY,
                                   RELEVANT, RETRIEVAL, UTILITY)


def retrieval_need(item: Mapping) -> str:
    """Retrieval when the item has gold passages.

    >>> retrieval_need({"gold": ["kb1"]}), retrieval_need({"gold": []})
    ('[Retrieval]', '[No Retrieval]')
    """
    return RETRIEVAL if item.get("gold") else NO_RETRIEVAL


def relevance(item: Mapping, passage: Mapping) -> str:
    """Relevant when the passage is a gold passage.

    >>> relevance({"gold": ["kb1"]}, {"id": "kb1"}), relevance({"gold": ["kb1"]}, {"id": "kb2"})
    ('[Relevant]', '[Irrelevant]')
    """
    return RELEVANT if str(passage.get("id")) in {str(g) for g in item.get("gold") or []} else IRRELEVANT


def support(item: Mapping, passage: Mapping) -> str:
    """Support from gold answers found in the passage.

    >>> item = {"gold": ["kb1"], "answers": ["1852"]}
    >>> support(item, {"id": "kb1", "text": "Founded in 1852."}), support(item, {"id": "kb1", "text": "Old."})
    ('[Fully supported]', '[Partially supported]')
    >>> support(item, {"id": "kb9", "text": "Nothing."})
    '[No support / Contradictory]'
    """
    text = normalize_answer(passage.get("text") or "")
    if any(normalize_answer(a) and normalize_answer(a) in text for a in item.get("answers") or []):
        return FULLY
    return PARTIALLY if relevance(item, passage) == RELEVANT else NO_SUPPORT


def utility(item: Mapping) -> str:
    """The gold output is fully useful.

    >>> utility({"answers": ["x"]})
    '[Utility:5]'
    """
    return UTILITY[4]
