"""The four outcomes of reading one document, the preference order between documents, and
each document's side (positive or negative) for the reranker.

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
reranker (its pair-wise list, the positive group). The paper names the four outcomes but not an
order between the middle two; ours ranks a document that leaves the reader right above one that
leaves it wrong, and breaks ties by the ``after`` answer's token F1, then by the retriever's
rank (:func:`preference_key`).

Which side of the reranker's training a document is on is :func:`side`: aligned documents are
positive, unaligned ones negative, and a middle outcome goes by the sign of the change in the
answer's token F1 that the document causes (``after_f1 - before_f1``; no change: unused). This
is what the released labelled rows show (DPA-RAG ``data/example_valid_dataset.jsonl`` and
``data/example_test_dataset.jsonl``, 20 rows each, ``category`` 1 = positive, 2 = negative):
in all 40, ``category`` is 1 exactly when ``after.f1 > before.f1`` and 2 exactly when
``after.f1 < before.f1``, among them 1 both-correct and 3 both-incorrect rows labelled 1 and
3 both-correct and 3 both-incorrect rows labelled 2 (correctness read from the rows' ``em``).
"""

from __future__ import annotations

ORDER = ("aligned", "both_correct", "both_incorrect", "unaligned")
MIDDLE = ("both_correct", "both_incorrect")  # the reader's correctness does not change


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


def side(row: dict) -> int:
    """The document's side for the reranker: 1 positive, -1 negative, 0 unused. Aligned is
    always positive and unaligned always negative; a middle outcome (both correct, both
    incorrect) is positive when the document raises the answer's token F1 (``after_f1`` over
    ``before_f1``), negative when it lowers it, unused when it leaves it as it was.

    >>> rows = [("aligned", 0.5, 0.2), ("unaligned", 0.0, 0.8),
    ...         ("both_correct", 1.0, 0.18), ("both_incorrect", 0.0, 0.4),
    ...         ("both_incorrect", 0.0, 0.0), ("both_correct", 0.5, 1.0)]
    >>> [side({"category": c, "before_f1": b, "after_f1": a}) for c, b, a in rows]
    [1, -1, -1, 1, 0, 1]
    """
    if row["category"] == "aligned":
        return 1
    if row["category"] == "unaligned":
        return -1
    if row["category"] not in MIDDLE:
        raise ValueError(f"unknown outcome {row['category']!r} (outcomes: {', '.join(ORDER)})")
    change = (row.get("after_f1") or 0.0) - (row.get("before_f1") or 0.0)
    return (change > 0) - (change < 0)
