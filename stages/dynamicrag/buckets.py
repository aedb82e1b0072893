"""DynamicRAG behaviour-cloning targets from expert relevance labels (SEEDS 1.3 steps 4 and 6).

Each item is a question's list of ``relevant`` labels, one per passage in retriever order. Its
``true ids`` are the 1-based positions of the relevant passages and ``false ids`` the rest.
Targets are spread over length buckets L = 0 .. max_len - 1, each capped at ``bucket_cap``
rows. For every L (ascending) whose bucket is not full and with ``|true| <= L``, one BC row is
emitted with

    sequence = shuffled(true ids) + shuffled(false ids)[: L - |true|]

so an item yields up to ``max_len`` rows, and targets are padded with irrelevant passages up to
length L (as in the paper's code; L = 0 with no relevant passage is the empty target "None").
One addition: L must not exceed the item's number of passages (the seed code would emit the same
all-passages target once for every larger L; with 40 passages and L <= 14 this never applies).
Items that yield at least one row are consumed; the rest ("normal" items: too many relevant
passages, every eligible bucket full, or never reached after the total cap) go on to generator
SFT and DPO sampling, split by :func:`split_sft_dpo`.

The functions return item positions, not items, so that the stage can take the rows from its
input table without holding them as Python objects. Randomness comes from one
``random.Random(seed)`` used in item order, so the output is a pure function of (labels,
parameters, seed).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import NamedTuple, Sequence


class BCRow(NamedTuple):
    item: int                       # position of the item in the input
    sequence: list[int]             # the target: 1-based passage positions, relevant ones first


class BCSplit(NamedTuple):
    bc: list[BCRow]                 # BC rows in item order (an item may give several)
    normal: list[int]               # positions of the items that produced no BC row, in order
    true_count_histogram: dict[int, int]   # |true ids| -> number of input items


def true_false_positions(labels: Sequence[bool | None]) -> tuple[list[int], list[int]]:
    """1-based positions of relevant and of non-relevant passages (a missing label = False).

    >>> true_false_positions([False, True, None, True])
    ([2, 4], [1, 3])
    """
    true_ids = [i for i, relevant in enumerate(labels, start=1) if relevant]
    false_ids = [i for i, relevant in enumerate(labels, start=1) if not relevant]
    return true_ids, false_ids


def true_false_ids(ctxs: list[dict]) -> tuple[list[int], list[int]]:
    """:func:`true_false_positions` of passage dicts' ``relevant`` (missing = False).

    >>> true_false_ids([{"relevant": False}, {"relevant": True}, {}, {"relevant": True}])
    ([2, 4], [1, 3])
    """
    return true_false_positions([c.get("relevant") for c in ctxs])


def bc_targets(labels: Sequence[Sequence[bool | None]], max_len: int = 15,
               bucket_cap: int = 2000, total_cap: int | None = None, seed: int = 0) -> BCSplit:
    """Behaviour-cloning targets bucketed by length, the leftover items, and a histogram.

    ``labels`` holds one list per item: its passages' relevance in retriever order.
    ``total_cap`` (None = only the per-bucket caps) stops emitting as soon as that many BC rows
    exist; the paper's 30,000 equals 15 buckets x 2,000. The histogram counts every input item.

    One item with 3 passages, passage 2 relevant, max_len 3: L = 0 is ineligible (|true| = 1 > 0);
    L = 1 gives [2]; L = 2 gives [2, x] with x one of the irrelevant passages 1 or 3.

    >>> split = bc_targets([[False, True, False]], max_len=3, seed=0)
    >>> [(row.item, len(row.sequence), row.sequence[0]) for row in split.bc]
    [(0, 1, 2), (0, 2, 2)]
    >>> split.normal, split.true_count_histogram
    ([], {1: 1})
    """
    rng = random.Random(seed)
    bucket_sizes = [0] * max_len
    bc: list[BCRow] = []
    normal: list[int] = []
    histogram: Counter[int] = Counter()

    def capped() -> bool:
        all_full = all(size >= bucket_cap for size in bucket_sizes)
        return all_full or (total_cap is not None and len(bc) >= total_cap)

    for item, item_labels in enumerate(labels):
        true_ids, false_ids = true_false_positions(item_labels)
        histogram[len(true_ids)] += 1
        produced = 0
        for length in range(max_len):
            if capped():
                break
            if (bucket_sizes[length] >= bucket_cap or len(true_ids) > length
                    or length > len(true_ids) + len(false_ids)):
                continue
            shuffled_true = list(true_ids)
            shuffled_false = list(false_ids)
            rng.shuffle(shuffled_true)
            rng.shuffle(shuffled_false)
            bc.append(BCRow(item, shuffled_true + shuffled_false[: length - len(true_ids)]))
            bucket_sizes[length] += 1
            produced += 1
        if not produced:
            normal.append(item)
    return BCSplit(bc, normal, dict(sorted(histogram.items())))


def split_sft_dpo(rows: list, n_sft: int = 70000, seed: int = 0) -> tuple[list, list]:
    """Shuffle (seeded) and cut: the first ``n_sft`` rows for generator SFT, the rest for DPO.

    >>> sft, dpo = split_sft_dpo(list(range(5)), n_sft=2, seed=0)
    >>> len(sft), len(dpo), sorted(sft + dpo)
    (2, 3, [0, 1, 2, 3, 4])
    """
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    return shuffled[:n_sft], shuffled[n_sft:]
