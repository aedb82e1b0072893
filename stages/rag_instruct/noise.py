"""The documents a RAG-Instruct example is trained with (SEEDS 4.3 step 5): all its source
documents D* plus noise documents D- drawn from far down its question's retrieval ranking."""

from __future__ import annotations

import random


def training_documents(sources: list[dict], ranked: list[dict], n_docs: int, noise_from: int,
                       rng: random.Random, shuffle: bool = True) -> list[dict]:
    """D* plus noise drawn at random from ``ranked[noise_from:]`` (ranks beyond ``noise_from``,
    D* left out) up to ``n_docs`` documents in all; D* is always kept whole, even past
    ``n_docs``. ``shuffle`` mixes D* among the noise (the paper does not say where D* goes;
    ``False`` puts D* first).

    The paper: 10 documents, noise from the ranks beyond the top 200 of 250 retrieved.

    >>> ranked = [{"id": str(i)} for i in range(8)]
    >>> docs = training_documents([{"id": "s"}], ranked, n_docs=3, noise_from=5,
    ...                           rng=random.Random(0), shuffle=False)
    >>> [d["id"] for d in docs]
    ['s', '6', '7']
    """
    source_ids = {d.get("id") for d in sources if d.get("id") is not None}
    pool = [d for d in ranked[noise_from:] if d.get("id") not in source_ids]
    noise = rng.sample(pool, min(len(pool), max(0, n_docs - len(sources))))
    docs = list(sources) + noise
    if shuffle:
        rng.shuffle(docs)
    return docs
