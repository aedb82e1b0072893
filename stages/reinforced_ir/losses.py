"""The retriever's training losses in Reinforced-IR's RLGF step (SEEDS §5.4), on torch tensors.

Total loss for ``training_type = retrieval_answer`` =
    norm_regulariser(a) + m3_kd_loss(q·pᵀ / τ, G) + info_nce(q, a, τ_answer)
with τ = 0.02, τ_answer = 0.05 and G = 16 (the group: positive then negatives in teacher order).
With several devices the score matrix holds every device's passages as columns (the caller
gathers them); these functions see one matrix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported inside the functions: registering stages stays light
    import torch


def m3_kd_loss(scores: torch.Tensor, group_size: int) -> torch.Tensor:
    """Sequential softmax over each query's group, in group order (Plackett–Luce / ListMLE style).

    ``scores`` is (B, B·G): row r scores every passage of every group; query r's group is columns
    r·G … r·G + G − 1, ordered positive first, then negatives in the teacher's order. Step i
    (i = 0 … G−1) is a cross-entropy with target column r·G + i, after which that column is masked
    out for row r; the loss is the mean over steps (of the batch mean). In-batch passages of other
    groups always compete. Reinforced-IR's version ignores the teacher's score values (only the
    order matters), unlike upstream FlagEmbedding's weighted one.

    Worked example, one query, G = 2, scores [[2, 0]]:
    step 0: −log(e²/(e² + e⁰)) = log(1 + e⁻²) = 0.12693; step 1 (column 0 masked): −log(1) = 0;
    loss = (0.12693 + 0) / 2 = 0.06346.

    >>> import torch
    >>> round(m3_kd_loss(torch.tensor([[2.0, 0.0]]), 2).item(), 5)
    0.06346
    """
    import torch
    import torch.nn.functional as F

    rows = scores.size(0)
    targets = torch.arange(rows, device=scores.device) * group_size
    mask = torch.zeros_like(scores)
    loss = scores.new_zeros(())
    for i in range(group_size):
        target = targets + i
        loss = loss + F.cross_entropy(scores + mask, target)
        mask = mask.scatter(1, target[:, None], torch.finfo(scores.dtype).min)
    return loss / group_size


def info_nce(queries: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of q_r against its own key k_r with the other keys as negatives:
    mean_r −log softmax(q_r·Kᵀ / τ)[r].

    >>> import torch
    >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> round(info_nce(q, q, 1.0).item(), 5)          # log(1 + e⁻¹)
    0.31326
    """
    import torch
    import torch.nn.functional as F

    logits = queries @ keys.T / temperature
    return F.cross_entropy(logits, torch.arange(queries.size(0), device=queries.device))


def norm_regulariser(embeddings: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the L2 norms from 1 (keeps augmentation embeddings on scale).

    >>> import torch
    >>> norm_regulariser(torch.tensor([[3.0, 4.0], [1.0, 0.0]])).item()     # ((5−1)² + 0) / 2
    8.0
    """
    import torch
    import torch.nn.functional as F

    norms = embeddings.norm(dim=1)
    return F.mse_loss(norms, torch.ones_like(norms))
