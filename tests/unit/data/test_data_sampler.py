"""Bucketed dynamic batching: determinism, the duration budget, DDP shards disjoint and complete."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semiasr.data.sampler import bucket_boundaries, plan_batches
from semiasr.errors import DataError


def _durs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 8.0, n)


def test_data_plan_deterministic_per_seed_and_epoch() -> None:
    d = _durs(500)
    kw = {"max_duration": 30.0, "num_buckets": 8}
    a = plan_batches(d, seed=1, epoch=0, **kw)
    b = plan_batches(d, seed=1, epoch=0, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    c = plan_batches(d, seed=1, epoch=1, **kw)
    e = plan_batches(d, seed=2, epoch=0, **kw)
    assert [x.tolist() for x in a] != [x.tolist() for x in c]
    assert [x.tolist() for x in a] != [x.tolist() for x in e]


def test_data_plan_budget_and_buckets() -> None:
    d = _durs(400)
    plan = plan_batches(d, max_duration=20.0, num_buckets=5, seed=0)
    assert sorted(np.concatenate(plan).tolist()) == list(range(400))
    bounds = [*bucket_boundaries(np.sort(d), 5), 400]
    rank_of = np.empty(400, int)
    rank_of[np.argsort(d, kind="stable")] = np.arange(400)
    for batch in plan:
        assert d[batch].sum() <= 20.0 or len(batch) == 1
        buckets = {int(np.searchsorted(bounds, r, side="right")) for r in rank_of[batch]}
        assert len(buckets) == 1  # a batch never mixes buckets
    totals = [np.sort(d)[a:b].sum() for a, b in itertools.pairwise(bounds)]
    assert max(totals) - min(totals) <= 2 * d.max()


def test_data_eval_plan_is_sorted_and_unshuffled() -> None:
    d = _durs(100)
    plan = plan_batches(d, max_duration=15.0, num_buckets=1, shuffle=False)
    flat = np.concatenate(plan)
    assert np.all(np.diff(d[flat]) >= 0)
    assert plan_batches(np.array([40.0, 1.0]), max_duration=10.0, shuffle=False)[1].tolist() == [0]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    world=st.integers(1, 8),
    seed=st.integers(0, 5),
    max_d=st.sampled_from([5.0, 30.0]),
)
def test_data_ddp_shards_disjoint_cover_equal(n: int, world: int, seed: int, max_d: float) -> None:
    d = _durs(n, seed)
    if n < world:
        with pytest.raises(DataError, match="fewer utterances than ranks"):
            plan_batches(d, max_duration=max_d, seed=seed, rank=0, world_size=world)
        return
    shards = [
        plan_batches(d, max_duration=max_d, seed=seed, epoch=3, rank=r, world_size=world)
        for r in range(world)
    ]
    assert len({len(s) for s in shards}) == 1
    seen = np.concatenate([np.concatenate(s) for s in shards])
    assert sorted(seen.tolist()) == list(range(n))


def test_data_bad_rank() -> None:
    with pytest.raises(ValueError, match="rank 2"):
        plan_batches(_durs(5), max_duration=10, rank=2, world_size=2)
    assert plan_batches(np.zeros(0), max_duration=10) == []
