"""The four outcomes of reading one document, and the preference order between documents.

DPA-RAG (SEEDS 3.2 step 2) asks the reader a question twice: with no document (``before``) and
with one retrieved document (``after``). The two answers' correctness sort the document into
one of four outcomes (the paper's Figure 1)::

    before wrong, after right  -> aligned          the reader needed this document
    before right, after right  -> both_correct     harmless
    before wrong, after wrong  -> both_incorrect   no help
    before right, after wrong  -> unaligned        the document misled the reader

>>> [category(b, a) for b, a in [(False, True), (True, True), (False, False), (True, False)]]
['aligned', 'both_correct', 'both_incorrect', 'unaligned']

``ORDER`` is the preference order, best first, used wherever documents are ranked for the
reranker (its pair-wise list, the positive and negative groups). The paper names the four
outcomes but not an order between the middle two; ours ranks a document that leaves the reader
right above one that leaves it wrong, and breaks ties by the ``after`` answer's token F1, then
by the retriever's rank (:func:`preference_key`).
"""

from __future__ import annotations

ORDER = ("aligned", "both_correct", "both_incorrect", "unaligned")
POSITIVE = ("aligned", "both_correct")      # the reader is right with the document
NEGATIVE = ("both_incorrect", "unaligned")  # the reader is wrong with it


def category(before_correct: bool, after_correct: bool) -> str:
    """The outcome of reading one document (see the module docstring)."""
    if after_correct:
        return "both_correct" if before_correct else "aligned"
    return "unaligned" if before_correct else "both_incorrect"


def preference_key(row: dict) -> tuple:
    """Sort key, best document first: category in ``ORDER``, then higher ``after_f1``, then
    better (lower) retrieval ``rank``.

    >>> rows = [{"category": "unaligned", "after_f1": 0.0, "rank": 1},
    ...         {"category": "both_correct", "after_f1": 1.0, "rank": 2},
    ...         {"category": "aligned", "after_f1": 0.5, "rank": 9},
    ...         {"category": "both_correct", "after_f1": 1.0, "rank": 1}]
    >>> [(r["category"], r["rank"]) for r in sorted(rows, key=preference_key)]
    [('aligned', 9), ('both_correct', 1), ('both_correct', 2), ('unaligned', 1)]
    """
    return ORDER.index(row["category"]), -(row.get("after_f1") or 0.0), row.get("rank") or 0
