"""Transducer greedy and modified beam search against float64 references on random small models.

The exact score of a token sequence ``y`` is its log-likelihood in the one-symbol-per-frame topology
that modified beam search explores: a DP over (t, u) where each frame emits blank or one token.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from semiasr.decoding import transducer_beam_search, transducer_greedy_search
from semiasr.nn import Joiner, LSTMPredictor, StatelessPredictor


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight the test workers for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


V = 6


def _model(seed: int, kind: str = "stateless", scale: float = 2.0):
    torch.manual_seed(seed)
    pred = LSTMPredictor(V, 12, dropout=0.0) if kind == "lstm" else StatelessPredictor(V, 12)
    joiner = Joiner(10, 12, 16, V)
    with torch.no_grad():
        joiner.output.weight.mul_(scale)  # peakier distributions than at initialisation
    return pred.eval(), joiner.eval()


@torch.no_grad()
def _lattice(pred, joiner, frames: torch.Tensor, y: list[int]) -> torch.Tensor:
    """(T, U+1, V) float64 log-probabilities for one utterance and token sequence ``y``."""
    g = pred(torch.tensor([[0, *y]]))
    return joiner(frames[None], g)[0].double().log_softmax(-1)


def _one_symbol_log_likelihood(pred, joiner, frames: torch.Tensor, y: list[int]) -> float:
    lp = _lattice(pred, joiner, frames, y)
    t_len, u_len = frames.shape[0], len(y)
    alpha = torch.full((t_len + 1, u_len + 1), -math.inf, dtype=torch.float64)
    alpha[0, 0] = 0.0
    for t in range(t_len):
        for u in range(u_len + 1):
            alpha[t + 1, u] = torch.logaddexp(alpha[t + 1, u], alpha[t, u] + lp[t, u, 0])
            if u < u_len:
                alpha[t + 1, u + 1] = torch.logaddexp(
                    alpha[t + 1, u + 1], alpha[t, u] + lp[t, u, y[u]]
                )
    return float(alpha[t_len, u_len])


def _s_symbol_log_likelihood(pred, joiner, frames: torch.Tensor, y: list[int], s: int) -> float:
    """log p(y) in the topology of greedy search with ``max_symbols_per_frame = s``: each frame
    emits k ≤ s tokens, then a blank unless k = s."""
    lp = _lattice(pred, joiner, frames, y)
    t_len, u_len = frames.shape[0], len(y)
    alpha = torch.full((t_len + 1, u_len + 1), -math.inf, dtype=torch.float64)
    alpha[0, 0] = 0.0
    for t in range(t_len):
        for u in range(u_len + 1):
            acc = alpha[t, u]
            for k in range(s + 1):
                if u + k > u_len:
                    break
                close = lp[t, u + k, 0] if k < s else 0.0
                alpha[t + 1, u + k] = torch.logaddexp(alpha[t + 1, u + k], acc + close)
                if u + k < u_len:
                    acc = acc + lp[t, u + k, y[u + k]]
    return float(alpha[t_len, u_len])


def _path_score(pred, joiner, frames, tokens, times, max_symbols: int) -> float:
    """Score of the greedy path: tokens at their frames, a blank closing each non-full frame."""
    lp = _lattice(pred, joiner, frames, tokens)
    score, u = 0.0, 0
    for t in range(frames.shape[0]):
        k = sum(1 for s in times if s == t)
        for _ in range(k):
            score += float(lp[t, u, tokens[u]].detach())
            u += 1
        if k < max_symbols:
            score += float(lp[t, u, 0].detach())
    return score


def _greedy_reference(pred, joiner, frames, max_symbols: int):
    """Unbatched greedy search that re-runs the predictor on the whole prefix every step."""
    tokens: list[int] = []
    times: list[int] = []
    for t in range(frames.shape[0]):
        for _ in range(max_symbols):
            g = pred(torch.tensor([[0, *tokens]]))[0, -1]
            k = int(joiner(frames[None, None, t], g[None, None])[0, 0, 0].argmax())
            if k == 0:
                break
            tokens.append(k)
            times.append(t)
    return tokens, times


def _frames(seed: int, b: int = 3, t: int = 9):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 10, generator=g), torch.tensor([t, t - 3, 4][:b])


@pytest.mark.parametrize("kind", ["stateless", "lstm"])
@pytest.mark.parametrize("max_symbols", [1, 3])
def test_greedy_matches_unbatched_reference_and_its_path_score(kind: str, max_symbols: int) -> None:
    pred, joiner = _model(0, kind)
    frames, lengths = _frames(1)
    out = transducer_greedy_search(pred, joiner, frames, lengths, max_symbols_per_frame=max_symbols)
    for b, n in enumerate(lengths.tolist()):
        tokens, times = _greedy_reference(pred, joiner, frames[b, :n], max_symbols)
        assert out.tokens[b] == tokens and out.times[b] == times
        ref = _path_score(pred, joiner, frames[b, :n], tokens, times, max_symbols)
        assert out.scores[b] == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("kind", ["stateless", "lstm"])
def test_beam_one_is_greedy_with_one_symbol_per_frame(kind: str) -> None:
    pred, joiner = _model(2, kind, scale=1.0)
    frames, lengths = _frames(3, t=12)
    greedy = transducer_greedy_search(pred, joiner, frames, lengths, max_symbols_per_frame=1)
    beam = transducer_beam_search(pred, joiner, frames, lengths, beam=1)
    assert beam.tokens == greedy.tokens and beam.times == greedy.times
    assert beam.scores == pytest.approx(greedy.scores, abs=1e-4)


@pytest.mark.parametrize("seed", range(8))
def test_beam_never_scores_worse_than_greedy(seed: int) -> None:
    """The model's score of each hypothesis (summed over the alignments the search kept) is at
    least greedy's, and never more than the exact likelihood of the returned sequence."""
    pred, joiner = _model(seed, "lstm" if seed % 2 else "stateless", scale=1.0)
    frames, lengths = _frames(seed + 100, t=10)
    greedy = transducer_greedy_search(pred, joiner, frames, lengths, max_symbols_per_frame=1)
    beam = transducer_beam_search(pred, joiner, frames, lengths, beam=4)
    for b, n in enumerate(lengths.tolist()):
        assert beam.scores[b] >= greedy.scores[b] - 1e-6
        ll_beam = _one_symbol_log_likelihood(pred, joiner, frames[b, :n], beam.tokens[b])
        ll_greedy = _one_symbol_log_likelihood(pred, joiner, frames[b, :n], greedy.tokens[b])
        assert beam.scores[b] <= ll_beam + 1e-5
        assert greedy.scores[b] <= ll_greedy + 1e-5


def test_exhaustive_beam_finds_the_most_likely_sequence() -> None:
    v_small = 3
    torch.manual_seed(5)
    pred, joiner = StatelessPredictor(v_small, 8).eval(), Joiner(6, 8, 8, v_small).eval()
    frames = torch.randn(1, 4, 6) * 2
    out = transducer_beam_search(pred, joiner, frames, torch.tensor([4]), beam=64)
    best, best_ll = None, -math.inf
    for u in range(5):
        for y in itertools.product(range(1, v_small), repeat=u):
            ll = _one_symbol_log_likelihood(pred, joiner, frames[0], list(y))
            if ll > best_ll:
                best, best_ll = list(y), ll
    assert out.tokens[0] == best
    assert out.scores[0] == pytest.approx(best_ll, abs=1e-5)


@pytest.mark.parametrize("kind", ["stateless", "lstm"])
def test_batched_beam_equals_one_utterance_at_a_time(kind: str) -> None:
    pred, joiner = _model(7, kind, scale=1.0)
    frames, lengths = _frames(8, t=11)
    batch = transducer_beam_search(pred, joiner, frames, lengths, beam=3)
    for b, n in enumerate(lengths.tolist()):
        one = transducer_beam_search(
            pred, joiner, frames[b : b + 1, :n], lengths[b : b + 1], beam=3
        )
        assert one.tokens[0] == batch.tokens[b] and one.times[0] == batch.times[b]
        assert one.scores[0] == pytest.approx(batch.scores[b], abs=1e-5)


def test_empty_utterance_and_argument_checks() -> None:
    pred, joiner = _model(0)
    frames = torch.randn(2, 3, 10)
    lengths = torch.tensor([3, 0])
    for out in (
        transducer_greedy_search(pred, joiner, frames, lengths),
        transducer_beam_search(pred, joiner, frames, lengths, beam=2),
    ):
        assert out.tokens[1] == [] and out.scores[1] == 0.0
    with pytest.raises(ValueError, match="beam"):
        transducer_beam_search(pred, joiner, frames, lengths, beam=0)
    with pytest.raises(ValueError, match="max_symbols"):
        transducer_greedy_search(pred, joiner, frames, lengths, max_symbols_per_frame=0)


@pytest.mark.parametrize("kind", ["stateless", "lstm"])
def test_beam_one_is_greedy_with_several_symbols_per_frame(kind: str) -> None:
    pred, joiner = _model(3, kind, scale=0.5)  # flat: several tokens per frame are likely
    frames, lengths = _frames(4)
    greedy = transducer_greedy_search(pred, joiner, frames, lengths, max_symbols_per_frame=3)
    beam = transducer_beam_search(pred, joiner, frames, lengths, beam=1, max_symbols_per_frame=3)
    assert any(len(set(times)) < len(times) for times in greedy.times)  # the case that matters
    assert beam.tokens == greedy.tokens and beam.times == greedy.times
    assert beam.scores == pytest.approx(greedy.scores, abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_multi_symbol_beam_never_worse_than_greedy_and_bounded_by_the_likelihood(seed) -> None:
    pred, joiner = _model(seed, "lstm", scale=0.7)
    frames, lengths = _frames(seed + 20)
    greedy = transducer_greedy_search(pred, joiner, frames, lengths, max_symbols_per_frame=3)
    beam = transducer_beam_search(pred, joiner, frames, lengths, beam=4, max_symbols_per_frame=3)
    for b, n in enumerate(lengths.tolist()):
        assert beam.scores[b] >= greedy.scores[b] - 1e-6
        ll = _s_symbol_log_likelihood(pred, joiner, frames[b, :n], beam.tokens[b], 3)
        assert beam.scores[b] <= ll + 1e-5


def test_exhaustive_multi_symbol_beam_finds_the_most_likely_sequence() -> None:
    v_small, s = 3, 2
    torch.manual_seed(6)
    pred, joiner = StatelessPredictor(v_small, 8).eval(), Joiner(6, 8, 8, v_small).eval()
    frames = torch.randn(1, 3, 6)
    out = transducer_beam_search(
        pred, joiner, frames, torch.tensor([3]), beam=256, max_symbols_per_frame=s
    )
    best, best_ll = None, -math.inf
    for u in range(3 * s + 1):
        for y in itertools.product(range(1, v_small), repeat=u):
            ll = _s_symbol_log_likelihood(pred, joiner, frames[0], list(y), s)
            if ll > best_ll:
                best, best_ll = list(y), ll
    assert out.tokens[0] == best
    assert out.scores[0] == pytest.approx(best_ll, abs=1e-5)


def test_batched_multi_symbol_beam_equals_one_utterance_at_a_time() -> None:
    pred, joiner = _model(9, "lstm", scale=0.7)
    frames, lengths = _frames(10, t=8)
    batch = transducer_beam_search(pred, joiner, frames, lengths, beam=3, max_symbols_per_frame=3)
    for b, n in enumerate(lengths.tolist()):
        one = transducer_beam_search(
            pred, joiner, frames[b : b + 1, :n], lengths[b : b + 1], beam=3, max_symbols_per_frame=3
        )
        assert one.tokens[0] == batch.tokens[b] and one.times[0] == batch.times[b]
        assert one.scores[0] == pytest.approx(batch.scores[b], abs=1e-5)
