"""Hard-negative mining for the retriever (Reinforced-IR step 4, RLGF data).

A query's positive is its source passage. Given the dense search of the query over the mining
corpus (ids and scores in rank order, top 2,000 in the paper), the ``95neg`` rule skips the
near-duplicates right below the positive (likely false negatives): it finds the first rank below
the positive whose score is at most 0.95 × the positive's score and takes the ``pool`` (50)
passages from there. When the positive is not in the list, or no score falls that low, it samples
``pool`` passages from ranks 30–200 instead. ``hard`` always samples from ranks 30–200; ``random``
samples from the whole corpus. Candidates are returned in rank order; :func:`keep_negatives` then
removes copies of the positive and duplicates and keeps at most 15.

Fixes relative to the original (``data_generation/utils.py``): the same rule is applied to the
search of the *augmentation* with that search's own scores (the original thresholded the
augmentation's ranks with the query search's scores), and a corpus with fewer than 200 passages
samples what there is instead of raising. The augmentation's negatives (``neg_answer``, read
only by a retriever trained with ``answer_inbatch``, off in the paper) differ from the original's
in two more ways: the augmentation is embedded as a query (the miner's ``augmentation_side``; the
original encoded it as a passage, without the instruction), and when the rule finds no start they
come from ranks 30–200 as the query's do (the original drew 50 passages from the whole corpus).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

Rule = Literal["95neg", "hard", "random"]


def candidate_negatives(ranked: Sequence[int], scores: Sequence[float], positive: int,
                        rule: Rule, rng: random.Random, *, pool: int = 50, ratio: float = 0.95,
                        fallback: tuple[int, int] = (30, 200), corpus_size: int = 0) -> list[int]:
    """Candidate negative ids for one query, in rank order (``random``: in sampled order).

    >>> ids = list(range(10, 20))                      # ranks 0..9 hold ids 10..19
    >>> scores = [1.0, 0.99, 0.97, 0.94, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    >>> candidate_negatives(ids, scores, positive=10, rule="95neg", rng=random.Random(0), pool=3)
    [13, 14, 15]

    (The positive scores 1.0; ranks 1–2 score above 0.95 and are skipped; rank 3 (0.94) starts
    the pool.) With the positive absent, ``pool`` ids are sampled from ranks 30–200 — here the
    list is shorter than 30, so from whatever lies past rank 30: nothing.

    >>> candidate_negatives(ids, scores, positive=99, rule="95neg", rng=random.Random(0), pool=3)
    []
    >>> len(candidate_negatives(list(range(300)), [1.0] * 300, 0, "95neg", random.Random(0)))
    50
    """
    ranked = list(ranked)
    if rule == "random":
        return rng.sample(range(corpus_size), min(pool, corpus_size))
    if rule == "95neg" and positive in ranked:
        at = ranked.index(positive)
        limit = scores[at] * ratio
        start = next((j for j in range(at + 1, len(ranked)) if scores[j] <= limit), None)
        if start is not None:
            return ranked[start:start + pool]
    lo, hi = fallback
    window = ranked[lo:hi]
    picked = set(rng.sample(range(len(window)), min(pool, len(window))))
    return [window[j] for j in sorted(picked)]


def keep_negatives(positive_text: str, texts: Sequence[str], keep: int = 15) -> list[str]:
    """Drop copies of the positive (the mining corpus holds the source passages twice) and
    duplicates, keep the first ``keep`` in order.

    >>> keep_negatives("p", ["a", "p", "b", "a", "c"], keep=2)
    ['a', 'b']
    """
    out: list[str] = []
    for text in texts:
        if text != positive_text and text not in out:
            out.append(text)
        if len(out) == keep:
            break
    return out
