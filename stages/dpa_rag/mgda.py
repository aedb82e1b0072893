"""MGDA-UB loss weights (Sener & Koltun, 2018) as DPA-RAG's reranker uses them (SEEDS §3.2
step 5): the convex combination of the per-loss gradients with the smallest norm.

Given the Gram matrix ``M[i, j] = g_i · g_j`` of the gradients g_i of the n losses (w.r.t. the
shared encoder), find α on the simplex (α_i ≥ 0, Σ α_i = 1) minimising ‖Σ α_i g_i‖² = αᵀ M α.
The training step then descends on Σ α_i L_i with α held constant. A loss whose gradient
conflicts with the others gets less weight; a loss that is already stationary (zero gradient)
gets all of it, since then the zero vector is in the hull and no common descent direction exists.

Two losses have a closed form. For more, Frank–Wolfe from uniform α: move towards the vertex
e_t with the smallest (M α)_t by the step γ that minimises the quadratic on that segment, for up
to 100 iterations, stopping when γ < 1e-3. The seed searched γ on a 100-point grid refined 4
times; the exact minimiser of a quadratic along a segment is what that search approximates, so
we take it directly. The seed also stopped as soon as one weight came within 1e-3 of 1; we do
not, because a vertex reached by a long step need not be the minimum (the next Frank–Wolfe step
leaves it when it is not, and stops at once when it is).
"""

from __future__ import annotations

import numpy as np

MAX_ITERATIONS = 100   # seed: MAX_N_ITER
STOP_STEP = 1e-3       # seed: EPS


def min_norm_weights(gram) -> np.ndarray:
    """α on the simplex minimising αᵀ M α for the Gram matrix ``gram`` (n × n, symmetric, PSD).

    g1 = (1, 0), g2 = (0, 2): M = [[1, 0], [0, 4]]; minimise α1² + 4·α2² with α1 + α2 = 1:
    2·α1 = 8·α2 → α = (0.8, 0.2), and the combined gradient (0.8, 0.4) is orthogonal to g1 − g2.

    >>> min_norm_weights([[1.0, 0.0], [0.0, 4.0]]).round(6).tolist()
    [0.8, 0.2]

    Orthogonal unit gradients share the weight equally, for two or three losses:

    >>> min_norm_weights(np.eye(2)).tolist()
    [0.5, 0.5]
    >>> min_norm_weights(np.eye(3)).round(6).tolist()
    [0.333333, 0.333333, 0.333333]

    A zero gradient (g1 = 0) gets all the weight: 0·g1 + ... has norm 0 only at α = (1, 0).

    >>> min_norm_weights([[0.0, 0.0], [0.0, 1.0]]).tolist()
    [1.0, 0.0]

    g1 = (1, 0), g2 = (0, 1), g3 = (1, 1): M = [[1, 0, 1], [0, 1, 1], [1, 1, 2]]. The closest
    point of the hull to the origin is (0.5, 0.5) = ½·g1 + ½·g2, so g3 gets (almost) nothing
    (Frank–Wolfe stops within its tolerance):

    >>> min_norm_weights([[1, 0, 1], [0, 1, 1], [1, 1, 2]]).round(2).tolist()
    [0.5, 0.5, 0.0]

    One loss has weight 1; a non-finite Gram matrix (a NaN loss) falls back to equal weights.

    >>> min_norm_weights([[3.0]]).tolist()
    [1.0]
    >>> min_norm_weights([[np.nan, 0.0], [0.0, 1.0]]).tolist()
    [0.5, 0.5]
    """
    m = np.asarray(gram, dtype=np.float64)
    n = m.shape[0]
    if m.shape != (n, n) or n == 0:
        raise ValueError(f"min_norm_weights: expected a square Gram matrix, got shape {m.shape}")
    uniform = np.full(n, 1.0 / n)
    if n == 1 or not np.isfinite(m).all():
        return uniform
    if n == 2:
        return _two(m)
    alpha = uniform
    for _ in range(MAX_ITERATIONS):
        t = int(np.argmin(m @ alpha))
        target = np.zeros(n)
        target[t] = 1.0
        gamma = _line_step(m, alpha, target)
        alpha = (1.0 - gamma) * alpha + gamma * target
        if gamma < STOP_STEP:
            break
    return alpha


def _two(m: np.ndarray) -> np.ndarray:
    """Closed form for two losses: α1 = clip((M22 − M12) / (M11 + M22 − 2·M12), 0, 1), the
    minimiser of ‖α1·g1 + (1 − α1)·g2‖². Equal gradients (denominator 0): equal weights.

    >>> _two(np.array([[1.0, 0.0], [0.0, 4.0]])).round(6).tolist()
    [0.8, 0.2]
    >>> _two(np.array([[1.0, 1.0], [1.0, 1.0]])).tolist()
    [0.5, 0.5]
    """
    denom = m[0, 0] + m[1, 1] - 2.0 * m[0, 1]
    if denom <= 0:
        return np.array([0.5, 0.5])
    a1 = float(np.clip((m[1, 1] - m[0, 1]) / denom, 0.0, 1.0))
    return np.array([a1, 1.0 - a1])


def _line_step(m: np.ndarray, alpha: np.ndarray, target: np.ndarray) -> float:
    """γ ∈ [0, 1] minimising f(γ) = vᵀ M v with v = (1 − γ)·α + γ·e_t.

    With d = e_t − α: f(γ) = αᵀMα + 2γ·dᵀMα + γ²·dᵀMd, so γ* = −dᵀMα / dᵀMd, clipped. When
    dᵀMd = 0 the segment is flat (M PSD makes dᵀMα = 0 too): stay, γ = 0.

    α = (0.5, 0.5), e_t = (1, 0), M = diag(1, 4): d = (0.5, −0.5), dᵀMα = 0.25 − 1 = −0.75,
    dᵀMd = 0.25 + 1 = 1.25, γ = 0.6 → α' = (0.8, 0.2) (the two-loss optimum in one step).

    >>> round(_line_step(np.diag([1.0, 4.0]), np.array([0.5, 0.5]), np.array([1.0, 0.0])), 6)
    0.6
    """
    d = target - alpha
    curvature = float(d @ m @ d)
    if curvature <= 0:
        return 0.0
    return float(np.clip(-(d @ m @ alpha) / curvature, 0.0, 1.0))


def gram(grads: list) -> list[list[float]]:
    """``M[i][j] = g_i · g_j`` for the losses' gradients, each a list of per-parameter tensors
    (``None``: the loss has no gradient for that parameter, i.e. zero), summed tensor by tensor
    so that no flattened copy of the model is made.

    g1 = ((1, 0), (2)), g2 = ((0, 3), none): g1·g1 = 1 + 4 = 5, g1·g2 = 0, g2·g2 = 9.

    >>> import torch
    >>> g1 = [torch.tensor([1.0, 0.0]), torch.tensor([2.0])]
    >>> g2 = [torch.tensor([0.0, 3.0]), None]
    >>> gram([g1, g2])
    [[5.0, 0.0], [0.0, 9.0]]
    """
    import torch

    n = len(grads)
    device = next(g for gs in grads for g in gs if g is not None).device
    m = torch.zeros(n, n, dtype=torch.float64, device=device)
    for tensors in zip(*grads):
        for i in range(n):
            for j in range(i, n):
                if tensors[i] is not None and tensors[j] is not None:
                    m[i, j] += torch.dot(tensors[i].reshape(-1), tensors[j].reshape(-1))
    m = m + m.triu(1).T
    return m.cpu().tolist()


def combined(alpha: list[float], grads: list) -> list:
    """``Σ α_i·g_i`` per parameter (``None`` where no loss has a gradient): the gradient of
    ``Σ α_i·L_i`` with α held constant, from the gradients already taken for the Gram matrix
    (no further backward pass).

    α = (0.75, 0.25), g1 = ((1, 0), (2)), g2 = ((0, 4), none): (0.75, 1.0) and (1.5).

    >>> import torch
    >>> g1 = [torch.tensor([1.0, 0.0]), torch.tensor([2.0])]
    >>> g2 = [torch.tensor([0.0, 4.0]), None]
    >>> [t.tolist() for t in combined([0.75, 0.25], [g1, g2])]
    [[0.75, 1.0], [1.5]]
    """
    out = []
    for tensors in zip(*grads):
        parts = [a * g for a, g in zip(alpha, tensors) if g is not None]
        out.append(sum(parts[1:], parts[0]) if parts else None)
    return out
