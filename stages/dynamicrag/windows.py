"""DynamicRAG reranking of more passages than fit in one prompt (SEEDS 1.3 step 14, fixed).

With N passages and a window of W (40 in the paper):

1. cut the N passages into windows of W and rerank every window (one batched call);
2. keep the union of the selected passages, first occurrence wins, in window order;
3. while more than W passages survive, rerank the survivors in windows of W again;
4. return the survivors (at most W), which then go to a single generator call.

``rerank_fn(list_of_windows) -> list_of_selections`` takes the windows of one round (each a list
of passage dicts) and returns, per window, the 1-based ids the reranker selected *within that
window*; ids outside the window are ignored.

Fixes relative to the seed code: ids are mapped through the window's offset (the seed indexed the
full list, so only passages of the first window could ever be selected), passages are
de-duplicated by their ``id`` (the seed put dicts in a ``set()`` and failed), and the loop is
guaranteed to end: a round that does not shrink the survivors is truncated to W passages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

RerankFn = Callable[[list[list[dict]]], Sequence[Sequence[int]]]


def _one_round(docs: list[dict], candidates: list[int], window: int,
               rerank_fn: RerankFn) -> list[int]:
    """Rerank ``candidates`` (indices into docs) in windows; the union of selections, in order."""
    windows = [candidates[i:i + window] for i in range(0, len(candidates), window)]
    selections = rerank_fn([[docs[j] for j in w] for w in windows])
    if len(selections) != len(windows):
        raise ValueError(f"rerank_fn returned {len(selections)} selections for "
                         f"{len(windows)} windows")
    chosen: list[int] = []
    seen: set = set()
    for w, selection in zip(windows, selections):
        for k in selection:
            if not 1 <= k <= len(w):
                continue
            j = w[k - 1]
            doc_id = docs[j].get("id")
            key = ("id", doc_id) if doc_id is not None else ("position", j)
            if key not in seen:
                seen.add(key)
                chosen.append(j)
    return chosen


def select_windowed(docs: list[dict], window: int, rerank_fn: RerankFn) -> list[dict]:
    """The passages the reranker keeps out of ``docs``, reranking in windows of ``window``.

    Five passages, window 2, a reranker that keeps the first passage of each window:
    round 1 windows [1 2] [3 4] [5] keep 1, 3, 5 (three > 2 survive); round 2 windows [1 3] [5]
    keep 1, 5.

    >>> docs = [{"id": f"d{i}"} for i in range(1, 6)]
    >>> keep_first = lambda windows: [[1] for _ in windows]
    >>> [d["id"] for d in select_windowed(docs, 2, keep_first)]
    ['d1', 'd5']
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if not docs:
        return []
    survivors = _one_round(docs, list(range(len(docs))), window, rerank_fn)
    while len(survivors) > window:
        reduced = _one_round(docs, survivors, window, rerank_fn)
        if len(reduced) >= len(survivors):      # no progress: stop here
            survivors = reduced[:window]
            break
        survivors = reduced
    return [docs[j] for j in survivors]
