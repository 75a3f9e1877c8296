"""Closed-set labelling: posteriors over a fixed list of candidate transcripts, smoothed over
acoustic neighbours and balanced to a prior over the candidates.

For recordings that say one of a known set of phrases (digits, commands, keywords), a recogniser's
log-likelihood log P(y_c | x) of each candidate c (summed over all alignments) gives the closed-set
posterior

    P(c | x) = exp(log P(y_c | x)) / Σ_c' exp(log P(y_c' | x))

(uniform prior; :func:`candidate_posteriors`). Two refinements for pseudo labels of a set of
recordings, e.g. one speaker's:

* **neighbour smoothing** (:func:`smooth_over_neighbours`): each row becomes the mean of its own and
  its k nearest rows' posteriors under a distance between recordings (DTW of features) — label
  propagation over repetitions of the same phrase;
* **class balance** (:func:`balance`): the posteriors rescaled so that each candidate's total over
  the set matches a prior share q_c of the N recordings (the training transcripts' frequencies):
  the matrix D₁ P D₂ with row sums 1 and column sums N·q that is closest to P in KL divergence,
  found by Sinkhorn–Knopp iterations (distribution alignment, Berthelot et al., "ReMixMatch",
  2020; class-balanced self-training, Zou et al., ECCV 2018; the equipartition of Asano et al.,
  ICLR 2020). A model that hears one speaker's THREE as TWO gives that speaker too many TWOs; the
  balance moves the least confident of them to the candidate that is short.

Both assume what they say: smoothing, that a set repeats its phrases; balance, that the set's
phrase frequencies follow the prior. Pure NumPy (float64), no model.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["balance", "candidate_posteriors", "smooth_over_neighbours"]

log = logging.getLogger(__name__)


def candidate_posteriors(log_likelihoods: np.ndarray) -> np.ndarray:
    """(N, C) log P(y_c | x_n) → (N, C) posteriors over the candidates (rows sum to 1). NaN counts
    as impossible (−inf); a row whose every candidate is impossible becomes uniform."""
    ll = np.nan_to_num(np.asarray(log_likelihoods, dtype=np.float64), nan=-np.inf)  # NaN: none
    if ll.ndim != 2 or ll.shape[1] == 0:
        raise ValueError(f"log_likelihoods must be (N, C) with C >= 1, got {ll.shape}")
    top = ll.max(axis=1, keepdims=True)
    none = ~np.isfinite(top[:, 0])
    p = np.exp(ll - np.where(np.isfinite(top), top, 0.0))
    p[none] = 1.0
    return p / p.sum(axis=1, keepdims=True)


def smooth_over_neighbours(probs: np.ndarray, distances: np.ndarray, k: int) -> np.ndarray:
    """Each row → the mean of its own and its ``k`` nearest other rows (by ``distances`` (N, N),
    ties broken by index); ``k`` ≥ N − 1 averages every row. k = 0 returns the rows unchanged."""
    p = np.asarray(probs, dtype=np.float64)
    d = np.asarray(distances, dtype=np.float64)
    n = p.shape[0]
    if d.shape != (n, n):
        raise ValueError(f"distances must be ({n}, {n}), got {d.shape}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    k = min(k, n - 1)
    if k == 0:
        return p.copy()
    d = d.copy()
    np.fill_diagonal(d, -np.inf)  # each row is its own first neighbour
    nearest = np.argsort(d, axis=1, kind="stable")[:, : k + 1]
    return p[nearest].mean(axis=1)


def balance(
    probs: np.ndarray, prior: np.ndarray, iters: int = 10_000, tol: float = 1e-10
) -> np.ndarray:
    """Sinkhorn–Knopp: the (N, C) matrix D₁ P D₂ (D diagonal, positive) whose rows sum to 1 and
    whose columns sum to N · prior / Σ prior. Candidates with prior 0 get 0; a row with mass only
    on such candidates keeps its posterior (nothing to rebalance it to). Stops when every column
    sum is within ``tol`` · N of its target."""
    p = np.asarray(probs, dtype=np.float64)
    q = np.asarray(prior, dtype=np.float64)
    n, c = p.shape
    if q.shape != (c,) or (q < 0).any() or q.sum() <= 0:
        raise ValueError(f"prior must be {c} non-negative weights with a positive sum, got {q}")
    if n == 0:
        return p.copy()
    target = n * q / q.sum()
    x = p * (q > 0)
    stuck = x.sum(axis=1) <= 0
    x[stuck] = 0.0
    x /= np.where(x.sum(axis=1, keepdims=True) > 0, x.sum(axis=1, keepdims=True), 1.0)
    live = target * (n - stuck.sum()) / n  # columns share the rows that can move
    for _ in range(iters):
        cols = x.sum(axis=0)
        scale = np.divide(live, cols, out=np.zeros_like(cols), where=cols > 0)
        x *= scale[None, :]
        rows = x.sum(axis=1, keepdims=True)
        x /= np.where(rows > 0, rows, 1.0)
        if np.abs(x.sum(axis=0) - live).max() <= tol * n:
            break
    else:
        log.warning(
            "balance: %d Sinkhorn iterations left the candidates' totals up to %.3g from their "
            "targets (posteriors with zeros where the targets need mass converge slowly)",
            iters,
            float(np.abs(x.sum(axis=0) - live).max()),
        )
    x[stuck] = p[stuck]
    return x
