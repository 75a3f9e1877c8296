"""Closed-set labelling (semiasr.decoding.closed_set): posteriors, neighbour smoothing by brute
force, and the Sinkhorn balance against its characterisation (marginals met, log-ratio to the
input additive in row and column)."""

from __future__ import annotations

import numpy as np
import pytest

from semiasr.decoding.closed_set import balance, candidate_posteriors, smooth_over_neighbours


def test_posteriors_are_the_softmax_over_candidates() -> None:
    ll = np.array([[-1.0, -2.0, -np.inf], [-np.inf, -np.inf, -np.inf], [-700.0, -701.0, -702.0]])
    p = candidate_posteriors(ll)
    e = np.exp([-1.0, -2.0])
    np.testing.assert_allclose(p[0], [e[0] / e.sum(), e[1] / e.sum(), 0.0], rtol=1e-12)
    np.testing.assert_allclose(p[1], [1 / 3] * 3)  # nothing possible: no preference
    np.testing.assert_allclose(p[2], np.exp([0, -1, -2]) / np.exp([0, -1, -2]).sum(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        candidate_posteriors(np.zeros(3))


def test_neighbour_smoothing_is_the_mean_over_the_k_nearest_and_itself() -> None:
    rng = np.random.default_rng(0)
    n, c = 9, 4
    p = rng.dirichlet(np.ones(c), size=n)
    x = rng.normal(size=(n, 2))
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    for k in (0, 1, 3, 8, 20):
        got = smooth_over_neighbours(p, d, k)
        for i in range(n):
            others = sorted((j for j in range(n) if j != i), key=lambda j: d[i, j])
            rows = [i, *others[: min(k, n - 1)]]
            np.testing.assert_allclose(got[i], p[rows].mean(axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match="distances"):
        smooth_over_neighbours(p, d[:3, :3], 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_balance_meets_the_marginals_with_a_diagonal_rescaling(seed: int) -> None:
    """The result is D1 P D2 (log-ratio = a_i + b_j) with rows summing to 1 and columns to
    N · prior: by Sinkhorn's theorem the unique such matrix, the KL-closest one to P."""
    rng = np.random.default_rng(seed)
    n, c = 12, 4
    p = rng.dirichlet(np.ones(c) * 0.7, size=n)
    prior = rng.uniform(0.5, 2.0, size=c)
    x = balance(p, prior, tol=1e-13)
    np.testing.assert_allclose(x.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(x.sum(axis=0), n * prior / prior.sum(), atol=1e-9)
    r = np.log(x) - np.log(p)
    centred = r - r.mean(axis=1, keepdims=True) - r.mean(axis=0, keepdims=True) + r.mean()
    np.testing.assert_allclose(centred, 0.0, atol=1e-9)


def test_balance_undoes_a_shared_confusion() -> None:
    """Every recording is called B; the A recordings less surely. With equal priors the two
    least B-like move to A — the confusion a vote or a neighbour cannot undo."""
    p_b = np.array([0.62, 0.7, 0.9, 0.95])  # truth A, A, B, B
    p = np.stack([1 - p_b, p_b], axis=1)
    assert (p.argmax(axis=1) == 1).all()
    x = balance(p, np.array([1.0, 1.0]))
    assert x.argmax(axis=1).tolist() == [0, 0, 1, 1]


def test_balance_with_a_zero_prior_and_rows_that_cannot_move() -> None:
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 1.0]])
    x = balance(p, np.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(x[2], [0.0, 0.0, 1.0])  # only an excluded candidate: kept
    np.testing.assert_allclose(x[:2].sum(axis=0), [1.0, 1.0, 0.0], atol=1e-9)
    with pytest.raises(ValueError, match="prior"):
        balance(p, np.array([1.0, -1.0, 0.0]))
    assert balance(np.zeros((0, 3)), np.ones(3)).shape == (0, 3)
