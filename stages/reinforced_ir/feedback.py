"""The retriever's feedback on a generator augmentation (Reinforced-IR step 2, RLRF data).

For a pseudo query q with source passage d and K sampled augmentations a_1..a_K, all embedded by
the current retriever, the reward of augmentation k is how close the *fused* query gets to d:

    raw = <q, d>                      s_k = <w·q + (1 − w)·a_k, d>        (w = 0.8, dot product)

The DPO pair is (chosen = argmax_k s_k, rejected = argmin_k s_k), kept only when

    rule 1 (default on):  max s > raw                       the best augmentation helps at all
    margin:               (max s − w·raw)·t ≥ (min s − w·raw)   (t = 0.95)

The margin compares the augmentations' own contributions ((1 − w)·<a_k, d>): with t = 0.95 the
rejected one must contribute at most 95 % of the chosen one's (for positive contributions), so
near-ties carry no preference and are dropped. Scores recorded with a pair are relative to raw
(``chosen_score = max s / raw``), as the original does; the original's LLaMA-Factory export then
named the column ``reject_score`` while the rows said ``rejected_score`` (we write one name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

QUERY_WEIGHT = 0.8
MARGIN = 0.95


def fused_scores(query: np.ndarray, passage: np.ndarray, augmentations: np.ndarray,
                 query_weight: float = QUERY_WEIGHT) -> np.ndarray:
    """s_k = <w·q + (1 − w)·a_k, d> for every row a_k of ``augmentations`` (shape K × dim).

    >>> q, d = np.array([1.0, 0.0]), np.array([1.0, 1.0])
    >>> fused_scores(q, d, np.array([[0.0, 2.0], [-1.0, 0.0]])).round(3).tolist()
    [1.2, 0.6]

    (0.8·(1, 0) + 0.2·(0, 2) = (0.8, 0.4), · (1, 1) = 1.2; 0.8·(1, 0) + 0.2·(−1, 0) = (0.6, 0) → 0.6.)
    """
    fused = query_weight * query[None, :] + (1.0 - query_weight) * augmentations
    return fused @ passage


class Pair(NamedTuple):
    chosen: int            # index of the chosen augmentation
    rejected: int
    chosen_score: float    # max s / raw
    rejected_score: float  # min s / raw


def preference_pair(raw: float, scores: Sequence[float], margin: float = MARGIN,
                    query_weight: float = QUERY_WEIGHT, require_gain: bool = True) -> Pair | None:
    """The DPO pair for one query, or None when the filter drops it.

    >>> preference_pair(1.0, [1.2, 0.6])
    Pair(chosen=0, rejected=1, chosen_score=1.2, rejected_score=0.6)

    (1.2 > 1.0, and (1.2 − 0.8)·0.95 = 0.38 ≥ 0.6 − 0.8 = −0.2.) A near tie is dropped:

    >>> preference_pair(1.0, [1.2, 1.19]) is None     # 0.38 < 0.39
    True
    >>> preference_pair(1.0, [0.9, 0.5]) is None      # no augmentation beats the raw query
    True
    >>> preference_pair(1.0, [0.9, 0.5], require_gain=False).chosen
    0

    Ties in max or min take the first index (as the original's ``list.index``).
    """
    values = [float(s) for s in scores]
    if len(values) < 2 or raw == 0:
        return None
    best, worst = max(values), min(values)
    if require_gain and not best > raw:
        return None
    base = query_weight * raw
    if not (best - base) * margin >= (worst - base):
        return None
    return Pair(values.index(best), values.index(worst), best / raw, worst / raw)
