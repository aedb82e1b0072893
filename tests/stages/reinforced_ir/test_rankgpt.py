"""Tolerant parsing of the listwise teacher's permutation and the rewritten group."""

import doctest

import pytest

from stages.reinforced_ir import rankgpt
from stages.reinforced_ir.rankgpt import parse_permutation, teacher_order


def test_doctests():
    assert doctest.testmod(rankgpt).failed == 0


@pytest.mark.parametrize("text, expected", [
    ("[3] > [0] > [2] > [1]", [3, 0, 2, 1]),
    ("3 > 0 > 2 > 1", [3, 0, 2, 1]),                              # no brackets
    ("[4] > [1] > [3] > [2]", [3, 0, 2, 1]),                      # 1-based
    ("[2] > [2] > [0]", [2, 0, 1, 3]),                            # repeated id, missing ids
    ("[9] > [1] > [12]", [1, 0, 2, 3]),                           # out of range
    ("Ranking: [1] is best, then [0].", [1, 0, 2, 3]),            # prose around it
    ("", [0, 1, 2, 3]),                                           # nothing parsable
])
def test_parse_malformed(text, expected):
    assert parse_permutation(text, 4) == expected


def test_teacher_order_promotes_a_negative():
    group = teacher_order(["pos", "n1", "n2", "n3"], parse_permutation("[2] > [0] > [3]", 4))
    assert group.pos == ["n2"] and group.neg == ["pos", "n3", "n1"]
    assert group.pos_scores == [1.0] and group.neg_scores == pytest.approx([1.0, 1 / 2, 1 / 3])
