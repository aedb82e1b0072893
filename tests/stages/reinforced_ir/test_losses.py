"""The RLGF losses against values computed by hand / by an independent formula."""

import doctest
import math

import pytest
import torch

from stages.reinforced_ir import losses
from stages.reinforced_ir.losses import info_nce, m3_kd_loss, norm_regulariser


def test_doctests():
    assert doctest.testmod(losses).failed == 0


def _plackett_luce(scores: list[list[float]], group: int) -> float:
    """Independent formula: for each row r and step i, −log of the target's share among the
    columns not yet used as row r's targets; mean over rows, then mean over steps."""
    total = 0.0
    for r, row in enumerate(scores):
        used: set[int] = set()
        for i in range(group):
            t = r * group + i
            denom = sum(math.exp(v) for j, v in enumerate(row) if j not in used)
            total += -(row[t] - math.log(denom))
            used.add(t)
    return total / (len(scores) * group)


def test_m3_kd_loss_2x8_matrix():
    # two queries, group size 4 (positive + 3 negatives): 2 × 8 scores
    s = [[4.0, 2.0, 1.0, 0.0, 1.5, 0.5, -1.0, 0.2],
         [0.3, -0.5, 1.0, 0.0, 3.0, 2.5, 0.5, -2.0]]
    got = m3_kd_loss(torch.tensor(s), 4).item()
    assert got == pytest.approx(_plackett_luce(s, 4), rel=1e-6)


def test_m3_kd_loss_by_hand_1x4():
    # one query, group 2 plus... a 1 × 2 matrix [[1, 1]]: step 0: log 2, step 1: 0 → log(2)/2
    assert m3_kd_loss(torch.tensor([[1.0, 1.0]]), 2).item() == pytest.approx(math.log(2) / 2)


def test_m3_kd_loss_prefers_teacher_order():
    good = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    bad = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    assert m3_kd_loss(good, 4) < m3_kd_loss(bad, 4)


def test_m3_kd_loss_has_gradients():
    s = torch.zeros(2, 8, requires_grad=True)
    m3_kd_loss(s, 4).backward()
    assert s.grad.abs().sum() > 0


def test_info_nce_and_norm():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    a = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    # logits q·aᵀ/0.5 = [[4, 0], [0, 4]] → −log(e⁴/(e⁴ + 1)) = log(1 + e⁻⁴) per row
    assert info_nce(q, a, 0.5).item() == pytest.approx(math.log1p(math.exp(-4)), rel=1e-5)
    assert norm_regulariser(a).item() == pytest.approx(1.0)         # (2 − 1)²
