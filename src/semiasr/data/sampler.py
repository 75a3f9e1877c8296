"""Length-bucketed dynamic batching: which utterances go together, per epoch and per DDP rank.

Given utterance durations ``d`` (N,), an epoch's plan is a list of batches (arrays of indices):

1. sort by duration and cut the sorted list into ``num_buckets`` runs of about equal total duration;
2. in each bucket (shuffled when training) pack utterances greedily while Σ d ≤ ``max_duration``
   (a longer utterance goes alone);
3. shuffle the batches of all buckets together (training) or keep them shortest first (evaluation);
4. for ``world_size`` ranks, split the batches holding the most utterances (or, in a corpus too
   small for that, merge the two shortest) until the count divides evenly, then give rank r the
   batches r, r + W, r + 2W, … — every rank gets the same number of batches (DDP needs that), the
   ranks' utterances are disjoint and together cover the epoch.

Everything random comes from ``numpy.random.default_rng([seed, epoch])``: the same seed and epoch
give the same plan on every rank and every run.
"""

from __future__ import annotations

import itertools

import numpy as np

from semiasr.errors import DataError

__all__ = ["bucket_boundaries", "plan_batches"]


def bucket_boundaries(sorted_durations: np.ndarray, num_buckets: int) -> list[int]:
    """Start offsets of ``num_buckets`` runs of about equal total duration in a sorted array."""
    n = sorted_durations.shape[0]
    if n == 0:
        return [0]
    cum = np.cumsum(sorted_durations, dtype=np.float64)
    targets = cum[-1] * np.arange(1, max(1, num_buckets)) / max(1, num_buckets)
    cuts = np.searchsorted(cum, targets, side="left") + 1
    return sorted({0, *(int(c) for c in cuts if 0 < c < n)})


def _pack(idx: np.ndarray, durations: np.ndarray, max_duration: float) -> list[np.ndarray]:
    batches, cur, total = [], [], 0.0
    for i in idx.tolist():
        d = float(durations[i])
        if cur and total + d > max_duration:
            batches.append(np.asarray(cur, dtype=np.int64))
            cur, total = [], 0.0
        cur.append(i)
        total += d
    if cur:
        batches.append(np.asarray(cur, dtype=np.int64))
    return batches


def _make_divisible(
    batches: list[np.ndarray], world_size: int, durations: np.ndarray
) -> list[np.ndarray]:
    """Make ``len(batches)`` a multiple of ``world_size``: halve the fullest batches up to the next
    multiple, or where there are too few utterances for that, merge the two shortest down to the
    previous multiple (this may exceed the duration budget)."""
    batches = list(batches)
    n = sum(len(b) for b in batches)
    if 0 < n < world_size:
        raise DataError(
            f"cannot share {n} utterance(s) among {world_size} ranks (fewer utterances than ranks)",
            item="sampler",
        )
    up = -(-len(batches) // world_size) * world_size
    target = up if up <= n else len(batches) // world_size * world_size
    while len(batches) < target:
        k = max(range(len(batches)), key=lambda j: (len(batches[j]), -j))
        half = len(batches[k]) // 2
        batches[k : k + 1] = [batches[k][:half], batches[k][half:]]
    while len(batches) > target:
        order = sorted(range(len(batches)), key=lambda j: (float(durations[batches[j]].sum()), j))
        a, b = sorted(order[:2])
        batches[a] = np.concatenate([batches[a], batches[b]])
        del batches[b]
    return batches


def plan_batches(
    durations: np.ndarray,
    *,
    max_duration: float,
    num_buckets: int = 10,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> list[np.ndarray]:
    """This rank's batches for ``epoch``: a list of index arrays into ``durations``."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    durations = np.asarray(durations, dtype=np.float64)
    rng = np.random.default_rng([int(seed), int(epoch)])
    order = np.argsort(durations, kind="stable")
    bounds = [*bucket_boundaries(durations[order], num_buckets), len(order)]
    batches: list[np.ndarray] = []
    for a, b in itertools.pairwise(bounds):
        idx = order[a:b]
        if shuffle:
            idx = rng.permutation(idx)
        batches += _pack(idx, durations, max_duration)
    if shuffle:
        batches = [batches[j] for j in rng.permutation(len(batches))]
    batches = _make_divisible(batches, world_size, durations)
    return batches[rank::world_size]
