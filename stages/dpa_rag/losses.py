"""The three objectives of DPA-RAG's reranker (SEEDS §3.2 step 5), on torch tensors.

The reranker maps a (query, document) pair to two logits, [unaligned, aligned], from the
encoder's first-token state. Per batch of B queries:

- ``cls_loss``: point-wise cross-entropy of one labelled pair per query (1 = aligned);
- ``rank_loss``: pair-wise RankNet on the aligned logits of a list ordered best first;
- ``scl_loss``: supervised contrastive loss (Khosla et al., 2020) on the L2-normalised
  first-token embeddings of the query's positive and negative pairs, labels [1, 1, 0, 0].

The training step weights them per step with :mod:`stages.dpa_rag.mgda`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported inside the functions: registering stages stays light
    import torch

TEMPERATURE = 0.07        # seed: SupConLoss(temperature=0.07)
BASE_TEMPERATURE = 0.07   # seed: SupConLoss(base_temperature=0.07)


def cls_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the 2 logits (B × 2) against labels in {0, 1} (B).

    Logits (0, ln 3) give P(aligned) = 3/4: label 1 costs −ln(3/4) = 0.28768, label 0 costs
    −ln(1/4) = 1.38629; the mean of the two rows is 0.83699.

    >>> import math, torch
    >>> logits = torch.tensor([[0.0, math.log(3)], [0.0, math.log(3)]])
    >>> round(cls_loss(logits, torch.tensor([1, 0])).item(), 5)
    0.83699
    """
    import torch.nn.functional as F

    return F.cross_entropy(logits, labels)


def rank_loss(groups: Sequence[torch.Tensor]) -> torch.Tensor:
    """RankNet over each query's scores (its documents best first): the sum over i < j of
    −log σ(s_i − s_j), divided by the number of pairs in the batch (the seed's 6·B for B groups
    of 4). ``groups`` is a B × G tensor or a list of 1-D tensors (groups may differ in size).

    One group (2, 1, 0): differences 1, 2, 1 → 2·ln(1 + e⁻¹) + ln(1 + e⁻²) = 0.62652 + 0.12693
    = 0.75345 over 3 pairs = 0.25115. Equal scores cost ln 2 = 0.69315 per pair.

    >>> import torch
    >>> round(rank_loss(torch.tensor([[2.0, 1.0, 0.0]])).item(), 5)
    0.25115
    >>> round(rank_loss([torch.tensor([2.0, 1.0, 0.0]), torch.tensor([0.0, 0.0])]).item(), 5)
    0.36165

    (The second: (0.75345 + 0.69315) / 4 pairs.)
    """
    import torch
    import torch.nn.functional as F

    total, pairs = None, 0
    for scores in groups:
        i, j = torch.triu_indices(len(scores), len(scores), offset=1, device=scores.device)
        term = -F.logsigmoid(scores[i] - scores[j]).sum()      # every pair i < j
        total = term if total is None else total + term
        pairs += i.numel()
    if total is None or pairs == 0:
        raise ValueError("rank_loss: no pairs (every group needs at least 2 documents)")
    return total / pairs


def supcon_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float = TEMPERATURE,
                base_temperature: float = BASE_TEMPERATURE) -> torch.Tensor:
    """Supervised contrastive loss of one group (Khosla et al., contrast mode "all", one view).

    ``features`` (K × D) are L2-normalised here. For anchor i with positives P(i) = {p ≠ i with
    the same label}: ℓ_i = −(τ / τ_base) · mean_{p ∈ P(i)} log softmax_{a ≠ i}(z_i·z_a / τ)[p]
    (0 when P(i) is empty); the loss is the mean of ℓ_i over all K anchors.

    Unit vectors e1, e1, e2, e2 with labels [1, 1, 0, 0] and τ = τ_base = 1: every anchor sees
    its twin at similarity 1 and the other two at 0, so ℓ_i = ln(e + 2) − 1 = 0.55144.

    >>> import torch
    >>> z = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])  # normalised inside
    >>> round(supcon_loss(z, torch.tensor([1, 1, 0, 0]), 1.0, 1.0).item(), 5)
    0.55144

    At the paper's τ = 0.07 the same separated groups cost almost nothing:
    ln(e^(1/0.07) + 2) − 1/0.07 = ln(1 + 2·e^(−14.29)) ≈ 1.25e-06 (in float64; float32 rounds
    it to one step of its resolution at 14.3).

    >>> f"{supcon_loss(z.double(), torch.tensor([1, 1, 0, 0])).item():.2e}"
    '1.25e-06'
    """
    import torch
    import torch.nn.functional as F

    z = F.normalize(features, dim=-1)
    k = z.size(0)
    not_self = ~torch.eye(k, dtype=torch.bool, device=z.device)
    logits = (z @ z.T) / temperature
    log_prob = logits - torch.logsumexp(logits.masked_fill(~not_self, float("-inf")), dim=1,
                                        keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & not_self
    counts = positive.sum(1).clamp(min=1)
    mean_log_prob = (log_prob * positive).sum(1) / counts
    return -(temperature / base_temperature) * mean_log_prob.mean()


def scl_loss(groups: Sequence[torch.Tensor], labels: Sequence[torch.Tensor],
             temperature: float = TEMPERATURE,
             base_temperature: float = BASE_TEMPERATURE) -> torch.Tensor:
    """:func:`supcon_loss` of each query's group (its positives then negatives, first-token
    embeddings), averaged over the queries: a query's documents are contrasted only with each
    other, as in the seed.

    >>> import torch
    >>> z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> y = torch.tensor([1, 1, 0, 0])
    >>> round(scl_loss([z, z.flip(0)], [y, y], 1.0, 1.0).item(), 5)   # both 0.55144
    0.55144
    """
    parts = [supcon_loss(f, y, temperature, base_temperature) for f, y in zip(groups, labels)]
    if not parts:
        raise ValueError("scl_loss: no groups")
    return sum(parts[1:], parts[0]) / len(parts)

