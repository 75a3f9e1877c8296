"""Neighbour voting over pseudo labels: label propagation along dynamic-time-warping distances.

When unlabelled recordings repeat the same few transcripts — spoken digits, commands, keywords,
each said many times by one speaker — one speaker's recordings of one word lie close together
under dynamic time warping (DTW) of their features: the classic speaker-dependent template match
of isolated-word recognition. A speaker-independent model's errors on a new speaker, on the other
hand, scatter over many recordings. Relabelling each recording with the majority of its own
pseudo label and those of its ``k`` nearest recordings (a k-nearest-neighbour vote, the simplest
form of label propagation over a similarity graph; Zhu & Ghahramani, 2002) therefore removes the
errors that are a minority among a word's repetitions, and keeps those that are not.

It helps only where transcripts repeat within a group (a speaker); on read sentences every
recording's nearest neighbours carry other transcripts and the vote would replace correct labels.
Nothing here reads a reference transcript.

Distances (:func:`dtw_distances`): for feature sequences ``a`` (n, F) and ``b`` (m, F),
``D(a, b) = min over monotone alignments of Σ ‖a_i − b_j‖₂ / (n + m)`` with steps (1, 0), (0, 1)
and (1, 1), each visited frame pair counted once — symmetric, zero for a sequence and itself.
A diagonal step costs one pair while the division counts both frames, so equal-length sequences
score lower than a per-frame average would (two n-frame sequences at per-pair cost c score c/2,
an n- and a 2n-frame one 2c/3): the distance favours recordings of similar length, which for
repetitions of one word by one speaker is no harm. The cost is Σ_{i<j} n_i n_j frame pairs per
group (:func:`frame_pairs`).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from semiasr.errors import ConfigError
from semiasr.semiring import kernels as _kernels  # noqa: F401  (sets numba's thread pool)

__all__ = ["MAX_DTW_CELLS", "dtw_distance", "dtw_distances", "frame_pairs", "neighbour_vote"]

MAX_DTW_CELLS = 20_000_000_000
"""Refuse a group whose pairwise DTW would visit more frame pairs than this (minutes of CPU)."""


@njit(cache=True)
def _dtw(a: np.ndarray, b: np.ndarray) -> float:  # pragma: no cover - compiled
    n, m = a.shape[0], b.shape[0]
    prev = np.full(m + 1, np.inf)
    cur = np.full(m + 1, np.inf)
    prev[0] = 0.0
    for i in range(1, n + 1):
        cur[0] = np.inf
        for j in range(1, m + 1):
            c = 0.0
            for f in range(a.shape[1]):
                d = a[i - 1, f] - b[j - 1, f]
                c += d * d
            best = prev[j - 1]
            if prev[j] < best:
                best = prev[j]
            if cur[j - 1] < best:
                best = cur[j - 1]
            cur[j] = np.sqrt(c) + best
        prev, cur = cur, prev
    return prev[m] / (n + m)


@njit(parallel=True, cache=True)
def _all_pairs(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:  # pragma: no cover
    k = offsets.shape[0] - 1
    out = np.zeros((k, k))
    # row i of the upper triangle holds k-1-i pairs: each task takes row p and row k-1-p, so the
    # tasks are of equal size and numba's equal chunks balance across threads
    for p in prange((k + 1) // 2):
        for r in range(2):
            i = p + r * (k - 1 - 2 * p)  # p, then k - 1 - p
            if r == 1 and i == p:  # the middle row of an odd k: once
                break
            a = flat[offsets[i] : offsets[i + 1]]
            for j in range(i + 1, k):
                out[i, j] = _dtw(a, flat[offsets[j] : offsets[j + 1]])
    for i in range(k):
        for j in range(i + 1, k):
            out[j, i] = out[i, j]
    return out


def _as_sequence(x: np.ndarray, what: str) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{what}: expected a non-empty (frames, dims) array, got shape {x.shape}")
    return x


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """DTW distance of two feature sequences (frames, dims): the cheapest monotone alignment's summed
    Euclidean frame distances over ``len(a) + len(b)``."""
    a, b = _as_sequence(a, "a"), _as_sequence(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    return float(_dtw(a, b))


def frame_pairs(lengths: Sequence[int]) -> int:
    """Σ_{i<j} n_i n_j: the frame pairs that the pairwise DTW of sequences of these lengths visits."""
    total = sum(int(n) for n in lengths)
    return (total * total - sum(int(n) * int(n) for n in lengths)) // 2


def dtw_distances(seqs: Sequence[np.ndarray], max_cells: int = MAX_DTW_CELLS) -> np.ndarray:
    """(N, N) float64 matrix of :func:`dtw_distance` between every pair of ``seqs`` (rows in
    parallel over numba's threads). Raises ConfigError past ``max_cells`` frame pairs."""
    seqs = [_as_sequence(s, f"sequence {i}") for i, s in enumerate(seqs)]
    if not seqs:
        return np.zeros((0, 0))
    dims = {s.shape[1] for s in seqs}
    if len(dims) != 1:
        raise ValueError(f"sequences have different feature dimensions: {sorted(dims)}")
    cells = frame_pairs([s.shape[0] for s in seqs])
    if cells > max_cells:
        raise ConfigError(
            f"neighbour voting over {len(seqs)} recordings would compare {cells:.3g} frame pairs "
            f"(limit {max_cells:.3g}); it is meant for short repeated words — group them by "
            f"speaker or vote over fewer recordings"
        )
    offsets = np.concatenate([[0], np.cumsum([s.shape[0] for s in seqs])]).astype(np.int64)
    return _all_pairs(np.concatenate(seqs), offsets)


def neighbour_vote(
    labels: Sequence[str], distances: np.ndarray, k: int
) -> tuple[list[str], list[float]]:
    """Each item's new label: the most frequent among its own label and those of its ``k`` nearest
    other items (``distances`` (N, N); equal distances go to the lower index). A tie keeps the
    item's own label when it is among the tied ones, else the tied label whose holder is nearest.
    Empty labels (no hypothesis) do not vote: an empty item takes its neighbours' majority, and
    stays empty only when all k + 1 are. Returns the labels and, per item, the share of the
    k + 1 votes its new label got (0 for one left empty)."""
    distances = np.asarray(distances, dtype=np.float64)
    n = len(labels)
    if distances.shape != (n, n):
        raise ValueError(f"distances must be ({n}, {n}) for {n} labels, got {distances.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, n - 1)
    out, shares = [], []
    for i in range(n):
        d = distances[i].copy()
        d[i] = -np.inf  # itself first
        order = np.argsort(d, kind="stable")[: k + 1]
        votes = [labels[j] for j in order if labels[j]]
        if not votes:
            out.append(labels[i])
            shares.append(0.0)
            continue
        counts = collections.Counter(votes)
        top = max(counts.values())
        if counts[labels[i]] == top:
            new = labels[i]
        else:
            new = next(v for v in votes if counts[v] == top)  # nearest holder of a tied label
        out.append(new)
        shares.append(counts[new] / len(order))
    return out, shares
