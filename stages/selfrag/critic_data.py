"""Critic training rows from teacher judgments (Self-RAG's C2 step), seeded.

Each judgment is (task, instruction, input, label token). Rules of the paper's code: relevance
rows labelled [Relevant] are kept with probability 0.7 (the teacher says "relevant" far more
often than not); rows whose instruction or input contains "### Response:" are dropped (they
would break the prompt template); the rows are shuffled and the first ``dev_size`` (1,500 in
the paper) form the dev split.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from stages.selfrag.tokens import RELEVANT

KEEP_RELEVANT = 0.7


def critic_rows(judgments: Iterable[Mapping[str, str]], rng: random.Random,
                dev_size: int = 1500) -> tuple[list[dict], list[dict]]:
    """(train, dev) rows ``{task, instruction, input, output}``.

    >>> rows = [{"task": "relevance", "instruction": "i", "input": f"x{n}", "output": RELEVANT}
    ...         for n in range(10)]
    >>> train, dev = critic_rows(rows, random.Random(0), dev_size=2)
    >>> len(train) + len(dev), len(dev)     # 3 of the 10 draws exceed 0.7
    (7, 2)
    """
    kept = []
    for row in judgments:
        if "### Response:" in row["instruction"] or "### Response:" in row.get("input", ""):
            continue
        if row["task"] == "relevance" and row["output"] == RELEVANT and rng.random() > KEEP_RELEVANT:
            continue
        kept.append(dict(row))
    rng.shuffle(kept)
    return kept[dev_size:], kept[:dev_size]
