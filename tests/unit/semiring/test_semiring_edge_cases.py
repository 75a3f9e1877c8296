"""Edge cases every backend must handle alike: utterances whose every alignment crosses an arc of
probability 0, NaN in the padding, the empty CTC utterance, and the torch backend's entropy in
float32 (the path CUDA takes) against float64."""

from __future__ import annotations

import math

import pytest
import torch

from semiasr import functional as F
from semiasr.semiring import use_backend

BACKENDS = ["numba", "torch"]


def _impossible() -> tuple:
    """Utterance 0 of each batch has no alignment of nonzero probability: CTC label 1 is −∞ at
    every frame; the RNN-T final blank is −∞. Utterance 1 is ordinary."""
    torch.manual_seed(0)
    lp = torch.randn(2, 4, 4, dtype=torch.float64)
    lp[0, :, 1] = -math.inf
    lp = lp.log_softmax(-1)
    x = torch.randn(2, 3, 3, 4, dtype=torch.float64)
    x[0, 2, 2, 3] = -math.inf
    targets = torch.tensor([[1, 2], [1, 2]])
    return lp, x, targets, torch.tensor([4, 4]), torch.tensor([3, 3]), torch.tensor([2, 2])


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_alignment_gives_zero_entropy_and_occupancy_and_no_path(backend: str) -> None:
    lp, x, tg, il, rl, tl = _impossible()
    with use_backend(backend):
        for grad in (False, True):
            lpg, xg = lp.clone().requires_grad_(grad), x.clone().requires_grad_(grad)
            h_ctc = F.ctc_alignment_entropy(lpg, tg, il, tl)
            h_rnnt = F.rnnt_alignment_entropy(xg, tg, rl, tl, blank=3)
            assert h_ctc[0] == 0.0 and h_rnnt[0] == 0.0
            assert h_ctc[1] > 0 and h_rnnt[1] > 0
            if grad:
                (h_ctc.sum() + h_rnnt.sum()).backward()
                assert torch.isfinite(lpg.grad[1]).all() and torch.isfinite(xg.grad[1]).all()
                assert (torch.nan_to_num(lpg.grad[0]) == 0).all()
            occ = F.ctc_occupancy(lpg, tg, il, tl)
            assert (occ[0] == 0).all()
            torch.testing.assert_close(occ[1].sum(-1), torch.ones(4, dtype=torch.float64))
            r_occ = F.rnnt_occupancy(xg, tg, rl, tl, blank=3)
            assert (r_occ.blank[0] == 0).all() and (r_occ.label[0] == 0).all()
            assert float(r_occ.blank[1].detach().sum()) == pytest.approx(3.0)
        ctc = F.ctc_forced_align(lp, tg, il, tl)
        assert ctc.score[0] == -math.inf and (ctc.symbols[0] == -1).all()
        assert math.isfinite(float(ctc.score[1])) and (ctc.symbols[1] >= 0).all()
        rnnt = F.rnnt_forced_align(x, tg, rl, tl, blank=3)
        assert rnnt.score[0] == -math.inf and (rnnt.path[0] == -1).all()
        assert math.isfinite(float(rnnt.score[1]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_padding_reaches_neither_value_nor_gradient(backend: str) -> None:
    torch.manual_seed(1)
    lp = torch.randn(2, 6, 5, dtype=torch.float64).log_softmax(-1)
    lp[1, 4:] = math.nan
    x = torch.randn(2, 5, 3, 5, dtype=torch.float64)
    x[1, 3:] = math.nan
    x[1, :, 2:] = math.nan
    tg = torch.tensor([[1, 2], [3, 0]])
    il, rl, tl = torch.tensor([6, 4]), torch.tensor([5, 3]), torch.tensor([2, 1])
    with use_backend(backend):
        lpg, xg = lp.clone().requires_grad_(), x.clone().requires_grad_()
        h = F.ctc_alignment_entropy(lpg, tg, il, tl)
        hr = F.rnnt_alignment_entropy(xg, tg, rl, tl, blank=4)
        (h.sum() + hr.sum()).backward()
        clean = F.ctc_alignment_entropy(lp[1:, :4], tg[1:], il[1:], tl[1:])
        clean_r = F.rnnt_alignment_entropy(x[1:, :3, :2], tg[1:, :1], rl[1:], tl[1:], blank=4)
    torch.testing.assert_close(h[1:], clean)
    torch.testing.assert_close(hr[1:], clean_r)
    assert torch.isfinite(lpg.grad[1, :4]).all() and torch.isfinite(xg.grad[1, :3, :2]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_torch_entropy_in_float32_matches_float64(backend: str) -> None:
    """exp(B − A) + A in float32 lost about 1e-7 · |log Z|² (12 nats at T = 1500); the lattice now
    runs in float64 whatever the input. A peaky posterior has entropy ≥ 0, not −0.004."""
    torch.manual_seed(2)
    t, u, v = 300, 40, 12
    lp = torch.randn(1, t, v, dtype=torch.float64).log_softmax(-1)
    tg = torch.randint(1, v, (1, u))
    args = (tg, torch.tensor([t]), torch.tensor([u]))
    with use_backend(backend):
        h64 = F.ctc_alignment_entropy(lp, *args)
        h32 = F.ctc_alignment_entropy(lp.float(), *args)
        peaky = F.ctc_alignment_entropy((lp * 40).log_softmax(-1).float(), *args)
    assert float(h32) == pytest.approx(float(h64), rel=1e-5)
    assert float(peaky) >= 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_empty_ctc_utterance_has_probability_one(backend: str) -> None:
    """No frames and no labels: the empty path, loss 0 as torch's ctc_loss (it was inf)."""
    torch.manual_seed(3)
    lp = torch.randn(2, 4, 3, dtype=torch.float64).log_softmax(-1)
    tg = torch.tensor([[1, 2], [1, 2]])
    il, tl = torch.tensor([0, 4]), torch.tensor([0, 2])
    with use_backend(backend):
        ours = F.ctc_loss(lp, tg, il, tl, reduction="none")
        align = F.ctc_forced_align(lp, tg, il, tl)
    ref = torch.nn.functional.ctc_loss(lp.transpose(0, 1), tg, il, tl, reduction="none")
    torch.testing.assert_close(ours, ref)
    assert float(ours[0]) == 0.0 and float(align.score[0]) == 0.0
    assert (align.symbols[0] == -1).all()
