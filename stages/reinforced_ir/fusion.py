"""The fused query embedding used at inference (and by the retriever-feedback reward):

    q_final = w·E(q) + (1 − w)·E(TOPIC_PREFIX + G(q))          (w = 0.8)

where G(q) is the generator's augmentation. The original embeds the augmentation with the
retriever's *query* side while building the generator's training data but with the *passage*
side at inference; here one setting (``augmentation_side``) is used in both places, so the
generator is rewarded for what inference will do. With a symmetric encoder (MiniLM, Contriever
without instructions) the two sides are the same function.
"""

from __future__ import annotations

import numpy as np

TOPIC_PREFIX = "Generate the topic about this passage: "
QUERY_WEIGHT = 0.8


def fuse(query_emb: np.ndarray, augmentation_emb: np.ndarray,
         query_weight: float = QUERY_WEIGHT) -> np.ndarray:
    """Row-wise w·q + (1 − w)·a (no re-normalisation, as the original).

    >>> fuse(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])).round(6).tolist()
    [[0.8, 0.2]]
    """
    return query_weight * query_emb + (1.0 - query_weight) * augmentation_emb
