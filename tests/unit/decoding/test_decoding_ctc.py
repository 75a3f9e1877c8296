"""CTC greedy and prefix beam search against brute force over all frame paths (tiny V and T)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from semiasr.decoding import ctc_greedy_search, ctc_prefix_beam_search


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight the test workers for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _collapse(path: tuple[int, ...], blank: int = 0) -> tuple[int, ...]:
    out, prev = [], None
    for s in path:
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return tuple(out)


def _labelling_log_probs(lp: torch.Tensor) -> dict[tuple[int, ...], float]:
    """log P(labelling) for every labelling, summing exp(path score) over all V^T frame paths."""
    t_len, v = lp.shape
    totals: dict[tuple[int, ...], list[float]] = {}
    for path in itertools.product(range(v), repeat=t_len):
        score = float(sum(lp[t, s] for t, s in enumerate(path)))
        totals.setdefault(_collapse(path), []).append(score)
    return {
        k: float(torch.logsumexp(torch.tensor(v, dtype=torch.float64), 0))
        for k, v in totals.items()
    }


@pytest.mark.parametrize("seed", range(6))
def test_prefix_beam_finds_the_most_probable_labelling(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    t_len, v = 5, 3
    lp = (torch.randn(1, t_len, v, generator=g, dtype=torch.float64) * 1.5).log_softmax(-1)
    table = _labelling_log_probs(lp[0])
    best = max(table, key=table.get)
    out = ctc_prefix_beam_search(lp, torch.tensor([t_len]), beam=1000)
    assert tuple(out.tokens[0]) == best
    assert out.scores[0] == pytest.approx(table[best], abs=1e-9)
    narrow = ctc_prefix_beam_search(lp, torch.tensor([t_len]), beam=2)
    # pruning drops paths: the score is a lower bound of the labelling's probability
    assert narrow.scores[0] <= table[tuple(narrow.tokens[0])] + 1e-12


@pytest.mark.parametrize("beam", [3, 4**7])
def test_prefix_beam_score_against_torch_ctc_loss(beam: int) -> None:
    """Exact (= −ctc_loss of the labelling) without pruning; a lower bound with it."""
    torch.manual_seed(0)
    lp = torch.randn(2, 7, 4, dtype=torch.float64).log_softmax(-1)
    lengths = torch.tensor([7, 5])
    out = ctc_prefix_beam_search(lp, lengths, beam=beam)
    for b, n in enumerate(lengths.tolist()):
        y = torch.tensor([out.tokens[b]])
        nll = torch.nn.functional.ctc_loss(
            lp[b : b + 1, :n].transpose(0, 1),
            y,
            torch.tensor([n]),
            torch.tensor([y.shape[1]]),
            reduction="sum",
        )
        if beam >= 4**7:
            assert out.scores[b] == pytest.approx(-float(nll), abs=1e-8)
        else:
            assert out.scores[b] <= -float(nll) + 1e-10
        assert all(0 <= t < n for t in out.times[b])
        assert out.times[b] == sorted(out.times[b])


def test_token_pruning_keeps_a_valid_search() -> None:
    torch.manual_seed(1)
    lp = torch.randn(1, 10, 7).log_softmax(-1)
    full = ctc_prefix_beam_search(lp, torch.tensor([10]), beam=4)
    pruned = ctc_prefix_beam_search(lp, torch.tensor([10]), beam=4, token_prune=3)
    assert pruned.scores[0] <= full.scores[0] + 1e-9 or pruned.tokens[0] != full.tokens[0]
    assert all(0 < k < 7 for k in pruned.tokens[0])


def test_greedy_is_the_collapsed_best_path() -> None:
    torch.manual_seed(2)
    lp = torch.randn(3, 9, 4).log_softmax(-1)
    lengths = torch.tensor([9, 6, 0])
    out = ctc_greedy_search(lp, lengths)
    for b, n in enumerate(lengths.tolist()):
        path = lp[b, :n].argmax(-1).tolist()
        assert tuple(out.tokens[b]) == _collapse(tuple(path))
        starts = [t for t in range(n) if path[t] != 0 and (t == 0 or path[t - 1] != path[t])]
        assert out.times[b] == starts
        assert out.scores[b] == pytest.approx(float(lp[b, :n].max(-1).values.sum()), abs=1e-5)
    assert out.tokens[2] == [] and out.scores[2] == 0.0
    # padding past the lengths is never read, even where it holds -inf or NaN (the score was NaN)
    padded = lp.clone()
    padded[1, 6:] = -math.inf
    padded[2] = math.nan
    again = ctc_greedy_search(padded, lengths)
    assert again.scores == out.scores and again.tokens == out.tokens


def test_prefix_beam_rejects_a_zero_beam() -> None:
    with pytest.raises(ValueError, match="beam"):
        ctc_prefix_beam_search(torch.zeros(1, 2, 3), torch.tensor([2]), beam=0)
    with pytest.raises(ValueError, match="token_prune"):
        ctc_prefix_beam_search(torch.zeros(1, 2, 3), torch.tensor([2]), token_prune=0)
    assert math.isfinite(ctc_prefix_beam_search(torch.zeros(1, 2, 3), torch.tensor([2])).scores[0])
