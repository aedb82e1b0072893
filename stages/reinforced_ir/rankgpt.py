"""The generator as a listwise teacher (Reinforced-IR step 5): a RankGPT-style prompt over the
positive and the mined negatives (16 passages, identifiers [0]..[15]), the model's permutation
parsed tolerantly, and the group rewritten in the teacher's order.

Parsing (``parse_permutation``) takes every integer in the output in order; if 0 is absent and
``n`` is present the answer was 1-based and is shifted down; out-of-range ids are dropped; an id
seen twice keeps its first place (the original kept both, so one passage could appear twice in
the group); ids the model left out are appended in their original order.

The rewrite (``teacher_order``): the top-ranked passage becomes the positive (the LLM may promote
a mined negative), the rest are negatives in the LLM's order, with teacher scores 1 for the
positive and 1, 1/2, 1/3, … for the negatives.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

_INT = re.compile(r"\d+")


def parse_permutation(text: str, n: int) -> list[int]:
    """A permutation of range(n) from a model's ranking output.

    >>> parse_permutation("[2] > [0] > [1]", 3)
    [2, 0, 1]
    >>> parse_permutation("[3] > [1] > [2]", 3)          # 1-based: shifted
    [2, 0, 1]
    >>> parse_permutation("[1] > [7] > [1] > [0]", 3)    # out of range, repeat, missing 2
    [1, 0, 2]
    >>> parse_permutation("I cannot rank these.", 3)
    [0, 1, 2]
    """
    ids = [int(m) for m in _INT.findall(text)]
    if 0 not in ids and n in ids:
        ids = [i - 1 for i in ids]
    order: list[int] = []
    for i in ids:
        if 0 <= i < n and i not in order:
            order.append(i)
    return order + [i for i in range(n) if i not in order]


class Group(NamedTuple):
    pos: list[str]
    neg: list[str]
    pos_scores: list[float]
    neg_scores: list[float]


def teacher_order(passages: Sequence[str], order: Sequence[int]) -> Group:
    """The group in the teacher's order with its scores.

    >>> teacher_order(["p", "n1", "n2"], [1, 0, 2])
    Group(pos=['n1'], neg=['p', 'n2'], pos_scores=[1.0], neg_scores=[1.0, 0.5])
    """
    ranked = [passages[i] for i in order]
    return Group(ranked[:1], ranked[1:], [1.0], [1.0 / (i + 1) for i in range(len(ranked) - 1)])
