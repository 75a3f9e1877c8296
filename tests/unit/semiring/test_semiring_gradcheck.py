"""float64 gradcheck of every public function of semiasr.functional (both backends where they differ)."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from semiasr import functional as F
from semiasr.semiring import use_backend

BACKENDS = ["numba", "torch"]


def _ctc():
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, 5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    xq = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    targets = torch.tensor([[1, 2, 2], [3, 1, 0], [2, 0, 0]])
    return x, xq, targets, torch.tensor([5, 4, 2]), torch.tensor([3, 2, 0])


def _rnnt():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(3, 4, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    xq = torch.randn(3, 4, 3, 4, generator=g, dtype=torch.float64)
    targets = torch.tensor([[1, 2], [0, 1], [2, 2]])
    return x, xq, targets, torch.tensor([4, 2, 1]), torch.tensor([2, 1, 0])


CTC_FUNCS = {
    "loss": lambda x, xq, *a: F.ctc_loss(x.log_softmax(-1), *a, blank=3, reduction="sum"),
    "loss_mean": lambda x, xq, *a: F.ctc_loss(x.log_softmax(-1), *a, blank=3),
    "entropy": lambda x, xq, *a: F.ctc_alignment_entropy(x.log_softmax(-1), *a, blank=3),
    "kl": lambda x, xq, *a: F.ctc_alignment_kl(x.log_softmax(-1), xq.log_softmax(-1), *a, blank=3),
    "align": lambda x, xq, *a: F.ctc_forced_align(x.log_softmax(-1), *a, blank=3).score,
    "occupancy": lambda x, xq, *a: F.ctc_occupancy(x.log_softmax(-1), *a, blank=3),
}

RNNT_FUNCS = {
    "loss": lambda x, xq, *a: F.rnnt_loss(x, *a, blank=3, reduction="sum"),
    "loss_unfused": lambda x, xq, *a: F.rnnt_loss(
        x.log_softmax(-1), *a, blank=3, fused_log_softmax=False
    ),
    "entropy": lambda x, xq, *a: F.rnnt_alignment_entropy(x, *a, blank=3),
    "kl": lambda x, xq, *a: F.rnnt_alignment_kl(x, xq, *a, blank=3),
    "align": lambda x, xq, *a: F.rnnt_forced_align(x, *a, blank=3).score,
    "occupancy": lambda x, xq, *a: tuple(F.rnnt_occupancy(x, *a, blank=3)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(CTC_FUNCS))
def test_ctc_gradcheck(backend, name):
    x, xq, *args = _ctc()
    with use_backend(backend):
        assert gradcheck(
            lambda x: CTC_FUNCS[name](x, xq, *args), (x,), eps=1e-6, atol=1e-6, fast_mode=True
        )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(RNNT_FUNCS))
def test_rnnt_gradcheck(backend, name):
    x, xq, *args = _rnnt()
    with use_backend(backend):
        assert gradcheck(
            lambda x: RNNT_FUNCS[name](x, xq, *args), (x,), eps=1e-6, atol=1e-6, fast_mode=True
        )


def test_rnnt_clamped_gradient_is_the_clamped_exact_gradient():
    """clamp changes the gradient on purpose, so it is checked against the clamped exact one."""
    x, _, *args = _rnnt()
    (g,) = torch.autograd.grad(F.rnnt_loss(x, *args, blank=3, reduction="sum"), x)
    (gc,) = torch.autograd.grad(F.rnnt_loss(x, *args, blank=3, clamp=0.05, reduction="sum"), x)
    torch.testing.assert_close(gc, g.clamp(-0.05, 0.05))


def test_gradients_finite_with_minus_inf_inputs_and_padding():
    """−inf log-probs, padded frames and unreachable cells: no NaN anywhere."""
    x, xq, targets, in_len, tgt_len = _ctc()
    lp = x.log_softmax(-1).detach().clone()
    lp[0, 1, 1] = float("-inf")
    lp[1, 4:] = float("nan")  # padding past input_lengths[1] = 4 is never read
    lp.requires_grad_(True)
    total = (
        F.ctc_loss(lp, targets, in_len, tgt_len, zero_infinity=True)
        + F.ctc_alignment_entropy(lp, targets, in_len, tgt_len).sum()
        + F.ctc_alignment_kl(lp, xq.log_softmax(-1), targets, in_len, tgt_len).sum()
    )
    (g,) = torch.autograd.grad(total, lp)
    assert torch.isfinite(g[:, :4]).all() and torch.isfinite(total)


@pytest.mark.parametrize("backend", BACKENDS)
def test_impossible_labels_give_inf_not_nan(backend):
    """A label whose log-prob is −inf at every frame: no path, inf loss (0 with zero_infinity)."""
    x, _, targets, in_len, tgt_len = _ctc()
    lp = x.detach().log_softmax(-1)
    lp[0, :, int(targets[0, 0])] = float("-inf")
    lp.requires_grad_(True)
    with use_backend(backend):
        loss = F.ctc_loss(lp, targets, in_len, tgt_len, reduction="none")
        assert loss[0] == float("inf") and torch.isfinite(loss[1:]).all()
        (g,) = torch.autograd.grad(F.ctc_loss(lp, targets, in_len, tgt_len, zero_infinity=True), lp)
    assert torch.isfinite(g).all() and g[0].abs().sum() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_rnnt_minus_inf_logits_stay_finite(backend):
    x, _, targets, t_len, u_len = _rnnt()
    x = x.detach().clone()
    x[:, :, :, 0] = float("-inf")  # symbol 0: only utterance 1 needs it, so it has no path
    x[2, 0, 0, 1] = float("-inf")  # one arc of utterance 2 that other paths avoid
    x.requires_grad_(True)
    with use_backend(backend):
        loss = F.rnnt_loss(x, targets, t_len, u_len, blank=3, reduction="none")
        (g,) = torch.autograd.grad(loss[[0, 2]].sum() + 0 * loss[1], x)
    assert loss[1] == float("inf") and torch.isfinite(loss[[0, 2]]).all()
    assert torch.isfinite(g).all() and g[1].abs().sum() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_entropy_and_kl_of_an_impossible_utterance_are_zero(backend):
    x, xq, targets, t_len, u_len = _rnnt()
    x = x.detach().clone()
    x[1, :, :, 0] = float("-inf")  # utterance 1 needs symbol 0: no path
    x.requires_grad_(True)
    with use_backend(backend):
        kl = F.rnnt_alignment_kl(x, xq, targets, t_len, u_len, blank=3)
        (g,) = torch.autograd.grad(kl.sum(), x)
    assert kl[1] == 0 and torch.isfinite(kl).all() and torch.isfinite(g).all()
    with use_backend("numba"):
        ent = F.rnnt_alignment_entropy(x, targets, t_len, u_len, blank=3)
    assert ent[1] == 0 and torch.isfinite(ent).all()
