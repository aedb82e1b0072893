"""MGDA-UB min-norm weights: hand-checked cases and a brute-force search over the simplex."""

import doctest

import numpy as np
import pytest

from stages.dpa_rag import mgda
from stages.dpa_rag.mgda import min_norm_weights


def test_doctests():
    assert doctest.testmod(mgda).failed == 0


def _grid_minimum(m: np.ndarray, steps: int = 200) -> float:
    """min of αᵀMα over a grid on the 3-simplex."""
    best = np.inf
    for i in range(steps + 1):
        for j in range(steps + 1 - i):
            a = np.array([i, j, steps - i - j]) / steps
            best = min(best, a @ m @ a)
    return best


def test_two_tasks_by_hand():
    # g1 = (3, 0), g2 = (1, 1): M = [[9, 3], [3, 2]]; α1 = (2 − 3) / (9 + 2 − 6) < 0 -> 0:
    # g2 is already the closest point of the segment (g2·(g1 − g2) = 2 − 0 > 0)
    assert min_norm_weights([[9.0, 3.0], [3.0, 2.0]]).tolist() == [0.0, 1.0]
    # g1 = (2, 0), g2 = (−1, 1): α1 = (2 + 2) / (4 + 2 + 4) = 0.4 -> 0.4·g1 + 0.6·g2 = (0.2, 0.6)
    assert min_norm_weights([[4.0, -2.0], [-2.0, 2.0]]) == pytest.approx([0.4, 0.6])
    # opposite gradients cancel: g and −g -> (0.5, 0.5), norm 0
    assert min_norm_weights([[1.0, -1.0], [-1.0, 1.0]]) == pytest.approx([0.5, 0.5])


def test_three_tasks_reach_the_minimum_norm():
    rng = np.random.default_rng(0)
    for _ in range(5):
        g = rng.normal(size=(3, 4))
        m = g @ g.T
        alpha = min_norm_weights(m)
        assert alpha.sum() == pytest.approx(1.0) and (alpha >= 0).all()
        # Frank–Wolfe stops at a step < 1e-3: near, not at, the optimum
        assert alpha @ m @ alpha <= 1.02 * _grid_minimum(m)


def test_a_vertex_reached_by_a_full_step_is_left_when_not_optimal():
    # g1 = (2, 0), g2 = (0, 2), g3 = (1, 0.5). From uniform, v = (1, 5/6) and g3·v is smallest;
    # the exact step to g3 is γ = 1 (|g3|² = 1.25 ≤ g3·v = 17/12), so α = e3, where the seed
    # stopped ("α saturated"). But g3·(g2 − g3) = −0.25 < 0: moving towards g2 shortens it, by
    # γ = 0.25 / |g2 − g3|² = 0.25 / 3.25 = 1/13, the minimum: α = (0, 1/13, 12/13).
    g = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.5]])
    assert min_norm_weights(g @ g.T) == pytest.approx([0.0, 1 / 13, 12 / 13], abs=1e-9)


def test_three_tasks_zero_gradient_takes_all_weight():
    g = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert min_norm_weights(g @ g.T).round(3).tolist() == [1.0, 0.0, 0.0]


def test_weights_do_not_depend_on_the_gradients_scale():
    m = np.array([[1.0, 0.2, 0.5], [0.2, 2.0, -0.3], [0.5, -0.3, 1.5]])
    assert min_norm_weights(m * 1e-8) == pytest.approx(min_norm_weights(m))


def test_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        min_norm_weights(np.zeros((2, 3)))
