"""The retriever-feedback reward and the DPO margin filter, against hand-computed values."""

import doctest

import numpy as np
import pytest

from stages.reinforced_ir import feedback
from stages.reinforced_ir.feedback import Pair, fused_scores, preference_pair


def test_doctests():
    assert doctest.testmod(feedback).failed == 0


def test_fused_scores_by_hand():
    q = np.array([2.0, 0.0, 1.0])
    d = np.array([1.0, 1.0, 0.0])
    augs = np.array([[0.0, 5.0, 0.0], [1.0, 1.0, 1.0], [-3.0, 0.0, 0.0]])
    # raw <q, d> = 2; fused = 0.8 q + 0.2 a:
    #   a1: (1.6, 1.0, 0.8)·d = 2.6   a2: (1.8, 0.2, 1.0)·d = 2.0   a3: (1.0, 0, 0.8)·d = 1.0
    assert fused_scores(q, d, augs) == pytest.approx([2.6, 2.0, 1.0])
    assert preference_pair(2.0, [2.6, 2.0, 1.0]) == Pair(0, 2, pytest.approx(1.3), pytest.approx(0.5))


@pytest.mark.parametrize("scores, kept", [
    ([1.2, 0.6], True),     # gain and a wide margin
    ([1.2, 1.19], False),   # (1.2 − 0.8)·0.95 = 0.38 < 0.39: a near tie carries no preference
    ([1.2, 1.18], True),    # 0.38 ≥ 0.38
    ([0.95, 0.1], False),   # rule 1: nothing beats the raw query (raw = 1)
    ([1.5], False),         # one augmentation: no pair
])
def test_margin_filter(scores, kept):
    assert (preference_pair(1.0, scores) is not None) is kept


def test_margin_threshold_one_keeps_only_strict_gains():
    # With t = 1 (the original's default when --threshold is not given) any max > min passes.
    assert preference_pair(1.0, [1.2, 1.19], margin=1.0) is not None
    assert preference_pair(1.0, [1.2, 1.2], margin=1.0).chosen == 0   # ties: first index
