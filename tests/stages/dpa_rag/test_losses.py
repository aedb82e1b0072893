"""DPA-RAG's reranker losses against hand-computed values and independent loop formulas."""

import doctest
import itertools
import math

import pytest
import torch

from stages.dpa_rag import losses
from stages.dpa_rag.losses import cls_loss, rank_loss, scl_loss, supcon_loss


def test_doctests():
    assert doctest.testmod(losses).failed == 0


def test_cls_loss_by_hand():
    # logits (1, 1): P = 1/2 either way -> ln 2; logits (2, 0) label 0: −ln(e²/(e²+1))
    logits = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    want = (math.log(2) + math.log(1 + math.exp(-2))) / 2
    assert cls_loss(logits, torch.tensor([1, 0])).item() == pytest.approx(want, rel=1e-6)


def test_rank_loss_is_the_seeds_double_loop_over_groups_of_4():
    # the seed: for each group of 4, i < j, −log σ(s_i − s_j), summed, divided by 6·B
    scores = torch.tensor([[3.0, 1.0, 2.0, -1.0], [0.5, 0.5, -2.0, 4.0]])
    want = sum(-math.log(1 / (1 + math.exp(-(row[i] - row[j]))))
               for row in scores.tolist() for i, j in itertools.combinations(range(4), 2)) / 12
    assert rank_loss(scores).item() == pytest.approx(want, rel=1e-6)


def test_rank_loss_prefers_the_given_order_and_has_gradients():
    good = torch.tensor([[3.0, 2.0, 1.0, 0.0]], requires_grad=True)
    assert rank_loss(good) < rank_loss(good.flip(1))
    rank_loss(good).backward()
    assert good.grad[0, 0] < 0 < good.grad[0, 3]   # push the first up, the last down
    with pytest.raises(ValueError, match="no pairs"):
        rank_loss([torch.tensor([1.0])])


def _khosla(features, labels, temperature, base):
    """Independent formula, anchor by anchor, as in the paper (one view, all anchors)."""
    z = [f / f.norm() for f in features]
    out = []
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        denom = sum(math.exp(float(z[i] @ z[a]) / temperature) for a in others)
        pos = [p for p in others if labels[p] == labels[i]]
        logs = [float(z[i] @ z[p]) / temperature - math.log(denom) for p in pos]
        out.append(-(temperature / base) * (sum(logs) / len(pos) if pos else 0.0))
    return sum(out) / len(out)


@pytest.mark.parametrize("labels", [[1, 1, 0, 0], [1, 0, 0], [1, 1, 1, 0, 0]])
def test_supcon_loss_matches_the_anchor_by_anchor_formula(labels):
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(len(labels), 5, generator=gen, dtype=torch.float64)
    got = supcon_loss(feats, torch.tensor(labels), 0.5, 0.07).item()
    assert got == pytest.approx(_khosla(feats, labels, 0.5, 0.07), rel=1e-9)


def test_supcon_loss_rewards_grouping_and_scl_averages_queries():
    y = torch.tensor([1, 1, 0, 0])
    grouped = torch.tensor([[1.0, 0.1], [1.0, -0.1], [-0.1, 1.0], [0.1, 1.0]])
    mixed = grouped[[0, 2, 1, 3]]
    assert supcon_loss(grouped, y) < supcon_loss(mixed, y)
    one, two = supcon_loss(grouped, y, 1.0, 1.0), supcon_loss(mixed, y, 1.0, 1.0)
    both = scl_loss([grouped, mixed], [y, y], 1.0, 1.0)
    assert both.item() == pytest.approx((one.item() + two.item()) / 2, rel=1e-6)
