"""Shallow fusion of an n-gram LM in both beam searches, against brute force on tiny cases: with a
beam wide enough to keep everything, the search returns the token sequence that maximises
``log P_model(y) + weight · log P_LM(y, end) + bonus · |y|`` and reports that score."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from semiasr.decoding import ctc_prefix_beam_search, transducer_beam_search
from semiasr.lm import NgramLM, ShallowFusion
from semiasr.nn import Joiner, StatelessPredictor

from .test_decoding_ctc import _labelling_log_probs
from .test_decoding_transducer import _s_symbol_log_likelihood


def _fused(fusion: ShallowFusion, y: tuple[int, ...]) -> float:
    """What fusion adds to the score of the finished sequence ``y``."""
    return sum(fusion.token_scores(y[:i])[w] for i, w in enumerate(y)) + fusion.end_score(y)


def _lm(vocab: int, seed: int) -> NgramLM:
    g = torch.Generator().manual_seed(seed)
    sents = [
        torch.randint(1, vocab, (int(n),), generator=g).tolist()
        for n in torch.randint(1, 5, (12,), generator=g)
    ]
    return NgramLM.fit(sents, vocab, order=3)


@pytest.mark.parametrize(("weight", "bonus"), [(0.5, 0.0), (1.5, 0.7), (3.0, -0.5)])
def test_exhaustive_transducer_beam_maximises_the_fused_score(weight: float, bonus: float) -> None:
    v, s = 3, 2
    torch.manual_seed(6)
    pred, joiner = StatelessPredictor(v, 8).eval(), Joiner(6, 8, 8, v).eval()
    frames = torch.randn(1, 3, 6)
    fusion = ShallowFusion(_lm(v, 1), weight, bonus)
    out = transducer_beam_search(
        pred, joiner, frames, torch.tensor([3]), beam=256, max_symbols_per_frame=s, fusion=fusion
    )
    best, best_score = None, -math.inf
    for u in range(3 * s + 1):
        for y in itertools.product(range(1, v), repeat=u):
            score = _s_symbol_log_likelihood(pred, joiner, frames[0], list(y), s) + _fused(
                fusion, y
            )
            if score > best_score:
                best, best_score = list(y), score
    assert out.tokens[0] == best
    assert out.scores[0] == pytest.approx(best_score, abs=1e-5)


def test_a_zero_weight_and_bonus_change_nothing() -> None:
    torch.manual_seed(2)
    pred, joiner = StatelessPredictor(4, 8).eval(), Joiner(6, 8, 8, 4).eval()
    frames, lengths = torch.randn(3, 7, 6), torch.tensor([7, 5, 6])
    plain = transducer_beam_search(pred, joiner, frames, lengths, beam=3, max_symbols_per_frame=2)
    fused = transducer_beam_search(
        pred,
        joiner,
        frames,
        lengths,
        beam=3,
        max_symbols_per_frame=2,
        fusion=ShallowFusion(_lm(4, 0), 0.0, 0.0),
    )
    assert fused.tokens == plain.tokens and fused.times == plain.times
    assert fused.scores == pytest.approx(plain.scores, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_exhaustive_ctc_prefix_beam_maximises_the_fused_score(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    t_len, v = 5, 3
    lp = (torch.randn(1, t_len, v, generator=g, dtype=torch.float64) * 1.5).log_softmax(-1)
    fusion = ShallowFusion(_lm(v, seed), 1.0 + seed / 2, 0.3 * (seed - 1))
    table = {y: ll + _fused(fusion, y) for y, ll in _labelling_log_probs(lp[0]).items()}
    best = max(table, key=table.get)
    out = ctc_prefix_beam_search(lp, torch.tensor([t_len]), beam=1000, fusion=fusion)
    assert tuple(out.tokens[0]) == best
    assert out.scores[0] == pytest.approx(table[best], abs=1e-9)


def test_a_strong_lm_overrides_weak_acoustics() -> None:
    # flat acoustics over 4 frames: the LM, which only ever saw "1 2", decides
    lp = torch.full((1, 4, 3), math.log(1 / 3), dtype=torch.float64)
    fusion = ShallowFusion(NgramLM.fit([[1, 2]] * 5, 3, order=3), weight=5.0)
    assert ctc_prefix_beam_search(lp, torch.tensor([4]), beam=8, fusion=fusion).tokens[0] == [1, 2]


def test_an_lm_of_another_vocabulary_is_refused() -> None:
    lp = torch.zeros(1, 2, 3).log_softmax(-1)
    with pytest.raises(ValueError, match="tokenizer"):
        ctc_prefix_beam_search(lp, torch.tensor([2]), fusion=ShallowFusion(_lm(5, 0)))
    pred, joiner = StatelessPredictor(3, 8).eval(), Joiner(6, 8, 8, 3).eval()
    with pytest.raises(ValueError, match="tokenizer"):
        transducer_beam_search(
            pred, joiner, torch.randn(1, 2, 6), torch.tensor([2]), fusion=ShallowFusion(_lm(5, 0))
        )


def test_fusion_needs_the_blank_at_id_0() -> None:
    lp = torch.zeros(1, 2, 3).log_softmax(-1)
    with pytest.raises(ValueError, match="blank"):
        ctc_prefix_beam_search(lp, torch.tensor([2]), blank=2, fusion=ShallowFusion(_lm(3, 0)))
