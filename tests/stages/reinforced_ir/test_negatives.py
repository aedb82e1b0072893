"""Negative mining (95neg / hard / random) on hand-made score lists."""

import doctest
import random

from stages.reinforced_ir import negatives
from stages.reinforced_ir.negatives import candidate_negatives, keep_negatives


def test_doctests():
    assert doctest.testmod(negatives).failed == 0


def test_95neg_skips_near_duplicates_below_the_positive():
    ranked = [7, 3, 9, 4, 8, 1, 2, 6, 5, 0]
    scores = [0.90, 0.80, 0.78, 0.77, 0.75, 0.70, 0.60, 0.50, 0.40, 0.30]
    # the positive (3) is at rank 1 with 0.80; 0.95 × 0.80 = 0.76: ranks 2–3 (0.78, 0.77) are
    # skipped, the pool starts at rank 4 (0.75)
    got = candidate_negatives(ranked, scores, 3, "95neg", random.Random(0), pool=4)
    assert got == [8, 1, 2, 6]


def test_95neg_falls_back_to_ranks_30_to_200():
    ranked = list(range(1000, 1300))
    scores = [1.0] * 300                      # nothing ever falls to 95 % of the positive
    got = candidate_negatives(ranked, scores, 1000, "95neg", random.Random(1))
    assert len(got) == 50 and len(set(got)) == 50
    assert all(1030 <= i < 1200 for i in got) and got == sorted(got)   # rank order


def test_positive_missing_uses_the_fallback():
    ranked = list(range(300))
    got = candidate_negatives(ranked, [1.0 - i / 1000 for i in range(300)], 999, "95neg",
                              random.Random(2), pool=5)
    assert len(got) == 5 and all(30 <= i < 200 for i in got)


def test_hard_and_random():
    ranked = list(range(500))
    hard = candidate_negatives(ranked, [0.0] * 500, 0, "hard", random.Random(3))
    assert len(hard) == 50 and all(30 <= i < 200 for i in hard) and hard == sorted(hard)
    rand = candidate_negatives(ranked, [0.0] * 500, 0, "random", random.Random(3), corpus_size=40)
    assert len(rand) == 40 and sorted(rand) == list(range(40))


def test_keep_drops_positive_copies_and_duplicates():
    assert keep_negatives("pos", ["a", "pos", "a", "b", "pos"] + [f"n{i}" for i in range(20)]) == (
        ["a", "b"] + [f"n{i}" for i in range(13)])
