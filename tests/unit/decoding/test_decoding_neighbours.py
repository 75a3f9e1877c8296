"""Neighbour voting over pseudo labels (semiasr.decoding.neighbours): DTW against a brute force
over every monotone alignment in float64, the distance matrix, the vote and its tie rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from semiasr.decoding.neighbours import dtw_distance, dtw_distances, frame_pairs, neighbour_vote
from semiasr.errors import ConfigError


def brute_force_dtw(a: np.ndarray, b: np.ndarray) -> float:
    """Every monotone path from (0, 0) to (n-1, m-1) with steps (1,0), (0,1), (1,1), enumerated."""
    n, m = len(a), len(b)
    best = np.inf
    steps = [(1, 0), (0, 1), (1, 1)]
    for length in range(max(n, m), n + m):  # a path visits between max(n, m) and n + m - 1 cells
        for seq in itertools.product(steps, repeat=length - 1):
            i = j = 0
            cost = float(np.linalg.norm(a[0] - b[0]))
            for di, dj in seq:
                i, j = i + di, j + dj
                if i >= n or j >= m:
                    break
                cost += float(np.linalg.norm(a[i] - b[j]))
            else:
                if (i, j) == (n - 1, m - 1):
                    best = min(best, cost)
    return best / (n + m)


@pytest.mark.parametrize("n,m", [(1, 1), (1, 4), (3, 2), (4, 4), (5, 3)])
def test_dtw_equals_brute_force(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 10 + m)
    a, b = rng.standard_normal((n, 3)), rng.standard_normal((m, 3))
    assert dtw_distance(a, b) == pytest.approx(brute_force_dtw(a, b), rel=1e-12, abs=1e-12)
    assert dtw_distance(b, a) == pytest.approx(dtw_distance(a, b), rel=1e-12)


def test_dtw_ignores_time_stretch_but_not_content() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 4))
    slow = np.repeat(a, 3, axis=0)  # every frame held three times: the same word, said slower
    assert dtw_distance(a, slow) == pytest.approx(0.0, abs=1e-12)
    assert dtw_distance(a, a[::-1]) > 0.1
    with pytest.raises(ValueError, match="feature dimensions differ"):
        dtw_distance(a, a[:, :2])
    with pytest.raises(ValueError, match="non-empty"):
        dtw_distance(a, np.zeros((0, 4)))


@pytest.mark.parametrize("count", [1, 2, 7, 8])  # odd and even: rows are paired for the threads
def test_distance_matrix_is_the_pairwise_distances(count: int) -> None:
    rng = np.random.default_rng(count)
    seqs = [
        rng.standard_normal((int(rng.integers(1, 9)), 5)).astype(np.float32) for _ in range(count)
    ]
    d = dtw_distances(seqs)
    assert d.shape == (count, count) and d.dtype == np.float64
    for i, j in itertools.product(range(count), repeat=2):
        want = 0.0 if i == j else dtw_distance(seqs[i], seqs[j])
        assert d[i, j] == pytest.approx(want, rel=1e-12, abs=0.0)


def test_distance_matrix_limits_and_shapes() -> None:
    rng = np.random.default_rng(1)
    seqs = [rng.standard_normal((int(rng.integers(1, 9)), 5)) for _ in range(7)]
    assert dtw_distances([]).shape == (0, 0)
    cells = sum(len(a) * len(b) for a, b in itertools.combinations(seqs, 2))
    assert frame_pairs([len(a) for a in seqs]) == cells
    dtw_distances(seqs, max_cells=cells)  # exactly at the limit: fine
    with pytest.raises(ConfigError, match="frame pairs"):
        dtw_distances(seqs, max_cells=cells - 1)
    with pytest.raises(ValueError, match="different feature dimensions"):
        dtw_distances([seqs[0], seqs[1][:, :2]])


def test_vote_fixes_a_minority_and_keeps_a_majority() -> None:
    # two tight clusters on a line: 0-4 near 0, 5-9 near 10
    x = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 10.0, 10.1, 10.2, 10.3, 10.4])
    d = np.abs(x[:, None] - x[None, :])
    labels = ["ONE", "ONE", "TWO", "ONE", "ONE", "SIX", "SIX", "SIX", "ONE", "SIX"]
    new, shares = neighbour_vote(labels, d, k=4)
    assert new == ["ONE"] * 5 + ["SIX"] * 5
    assert shares[2] == pytest.approx(4 / 5) and shares[0] == pytest.approx(4 / 5)
    # a cluster that is mostly wrong stays wrong: the vote cannot know better than its neighbours
    wrong = ["TWO", "TWO", "TWO", "ONE", "ONE", *labels[5:]]
    assert neighbour_vote(wrong, d, k=4)[0][:5] == ["TWO"] * 5


def test_vote_ties_and_small_groups() -> None:
    x = np.array([0.0, 1.0, 3.0, 6.0])
    d = np.abs(x[:, None] - x[None, :])
    # item 0 with k=1 sees itself (A) and item 1 (B): a tie keeps its own label
    assert neighbour_vote(["A", "B", "C", "D"], d, k=1)[0] == ["A", "B", "C", "D"]
    # item 0 with k=3 sees A, B, C, C: C wins outright
    assert neighbour_vote(["A", "B", "C", "C"], d, k=3)[0][0] == "C"
    # item 3 (X) with k=2 sees itself, item 2 (Y) and item 1 (Z): a three-way tie keeps X
    assert neighbour_vote(["W", "Z", "Y", "X"], d, k=2)[0][3] == "X"
    # a tie that does not include its own label goes to the nearest holder: item 0 (label P),
    # k=4 over P, Q, Q, R, R (two of Q at 1 and 3, two of R at 6 and 7)
    x5 = np.array([0.0, 1.0, 3.0, 6.0, 7.0])
    d5 = np.abs(x5[:, None] - x5[None, :])
    new, _ = neighbour_vote(["P", "Q", "Q", "R", "R"], d5, k=4)
    assert new[0] == "Q"
    # k larger than the group is capped
    assert neighbour_vote(["A", "B", "B"], d[:3, :3], k=10)[0] == ["B", "B", "B"]
    with pytest.raises(ValueError, match="k must be at least 1"):
        neighbour_vote(["A"], np.zeros((1, 1)), k=0)
    with pytest.raises(ValueError, match=r"must be \(2, 2\)"):
        neighbour_vote(["A", "B"], np.zeros((3, 3)), k=1)


def test_empty_labels_do_not_vote() -> None:
    x = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 5.2])
    d = np.abs(x[:, None] - x[None, :])
    # a right label next to two empty hypotheses keeps it; empty ones take their neighbours' word
    new, shares = neighbour_vote(["", "", "ONE", "", "", ""], d, k=2)
    assert new == ["ONE", "ONE", "ONE", "", "", ""]
    assert shares[0] == pytest.approx(1 / 3) and shares[3] == 0.0
    # an integer distance matrix works too
    assert neighbour_vote(["A", "B", "B"], np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]]), k=2)[0] == [
        "B",
        "B",
        "B",
    ]
