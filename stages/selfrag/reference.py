"""The ``reference`` teacher: the four Self-RAG judgments derived from gold annotations instead
of an LLM (for data with gold passage ids and answers, such as the CPU demo's knowledge base).

* retrieval need: [Retrieval] when the item has gold passages, else [No Retrieval];
* relevance of a passage: [Relevant] when its id is a gold passage id;
* support of the output by a passage: [Fully supported] when a gold answer occurs in it
  (normalised), [Partially supported] when the passage is relevant without it, else
  [No support / Contradictory];
* utility: [Utility:5] — the output is the gold answer itself;
* what a later sentence of the output needs: [No Retrieval] for an item without gold
  passages, [Continue to Use Evidence] when the evidence already retrieved (the instruction's
  first passage) is a gold passage, else [Retrieval].
"""

from __future__ import annotations

from collections.abc import Mapping

from stages.lib.metrics.answer import normalize_answer
from stages.selfrag.tokens import (CONTINUE, FULLY, IRRELEVANT, NO_RETRIEVAL, NO_SUPPORT,
                                   PARTIALLY, RELEVANT, RETRIEVAL, UTILITY)


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


def sentence_need(item: Mapping, evidence: Mapping | None) -> str:
    """What a later sentence needs, from the gold passages: none for an item without them; the
    evidence already retrieved (the instruction's first passage) when it is gold; else more.

    >>> item = {"gold": ["kb1"]}
    >>> sentence_need(item, {"id": "kb1"}), sentence_need(item, {"id": "kb2"})
    ('[Continue to Use Evidence]', '[Retrieval]')
    >>> sentence_need({"gold": []}, None)
    '[No Retrieval]'
    """
    if retrieval_need(item) == NO_RETRIEVAL:
        return NO_RETRIEVAL
    return CONTINUE if evidence and relevance(item, evidence) == RELEVANT else RETRIEVAL
