"""semiasr.functional.rnnt_loss against torchaudio (stored outputs) and the generic lattice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from semiasr import functional as F
from semiasr.semiring import use_backend

BACKENDS = ["numba", "torch"]
FIXTURE = Path(__file__).with_name("torchaudio_rnnt_fixture.json")


def _batch(seed, bsz=4, t_max=7, u_max=4, v=6, blank=-1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(bsz, t_max, u_max + 1, v, generator=g, dtype=torch.float64)
    symbols = torch.tensor([s for s in range(v) if s != blank % v])
    targets = symbols[torch.randint(0, v - 1, (bsz, u_max), generator=g)]
    t_len = torch.randint(1, t_max + 1, (bsz,), generator=g)
    t_len[0] = t_max
    u_len = torch.randint(0, u_max + 1, (bsz,), generator=g)
    u_len[0] = u_max
    return x.requires_grad_(True), targets, t_len, u_len


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(5))
def test_matches_torchaudio_outputs(backend, case):
    """Values and gradients stored from torchaudio 2.9.1 (make_torchaudio_fixture.py)."""
    doc = json.loads(FIXTURE.read_text())
    c = doc["cases"][case]
    logits = torch.tensor(c["logits"], dtype=torch.float32, requires_grad=True)
    args = [torch.tensor(c[k]) for k in ("targets", "logit_lengths", "target_lengths")]
    with use_backend(backend):
        loss = F.rnnt_loss(logits, *args, c["blank"], c["clamp"], c["reduction"], c["fused"])
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    torch.testing.assert_close(loss, torch.tensor(c["loss"]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, torch.tensor(c["grad"]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("blank", [-1, 0, 2])
def test_value_and_gradient_match_generic_lattice(backend, blank):
    x, targets, t_len, u_len = _batch(1, blank=blank)
    with use_backend(backend):
        loss = F.rnnt_loss(x, targets, t_len, u_len, blank, reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    ref = -F.rnnt_semiring_total("log", x, targets, t_len, u_len, blank).sum()
    (g_ref,) = torch.autograd.grad(ref, x)
    torch.testing.assert_close(loss, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, g_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clamp_and_unfused(backend):
    x, targets, t_len, u_len = _batch(2)
    lp = x.detach().log_softmax(-1).requires_grad_(True)
    with use_backend(backend):
        per_utt = F.rnnt_loss(lp, targets, t_len, u_len, reduction="none", fused_log_softmax=False)
        (g,) = torch.autograd.grad(per_utt.sum(), lp)
        clamped = F.rnnt_loss(x, targets, t_len, u_len, clamp=0.01, reduction="mean")
        (gc,) = torch.autograd.grad(clamped, x)
    ref = -F.rnnt_semiring_total("log", lp, targets, t_len, u_len, fused_log_softmax=False)
    (g_ref,) = torch.autograd.grad(ref.sum(), lp)
    torch.testing.assert_close(per_utt, ref)
    torch.testing.assert_close(g, g_ref)  # −occupancy on the two used symbols, 0 elsewhere
    (g_full,) = torch.autograd.grad(
        F.rnnt_loss(x, targets, t_len, u_len, reduction="none").sum(), x
    )
    torch.testing.assert_close(gc, g_full.clamp(-0.01, 0.01) / x.shape[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_lengths_equal_running_alone(backend):
    x, targets, t_len, u_len = _batch(3, bsz=5)
    with use_backend(backend):
        loss = F.rnnt_loss(x, targets, t_len, u_len, reduction="none")
        (g,) = torch.autograd.grad(loss.sum(), x)
        for b in range(x.shape[0]):
            t, u = int(t_len[b]), int(u_len[b])
            xb = x[b : b + 1, :t, : u + 1].detach().requires_grad_(True)
            alone = F.rnnt_loss(xb, targets[b : b + 1, :u], [t], [u], reduction="none")
            (gb,) = torch.autograd.grad(alone.sum(), xb)
            assert float(alone.detach()) == pytest.approx(float(loss[b].detach()), rel=1e-12)
            torch.testing.assert_close(gb[0], g[b, :t, : u + 1])
            assert g[b, t:].abs().sum() == 0 and g[b, :, u + 1 :].abs().sum() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_occupancies_sum_to_t_and_u(backend):
    x, targets, t_len, u_len = _batch(4)
    with use_backend(backend):
        occ = F.rnnt_occupancy(x.detach(), targets, t_len, u_len)
    torch.testing.assert_close(occ.blank.sum((1, 2)), t_len.double())
    torch.testing.assert_close(occ.label.sum((1, 2)), u_len.double())
    generic = F.rnnt_occupancy(x, targets, t_len, u_len)
    torch.testing.assert_close(generic.blank.detach(), occ.blank)
    torch.testing.assert_close(generic.label.detach(), occ.label)


@pytest.mark.parametrize("backend", BACKENDS)
def test_u0_and_t1(backend):
    x = torch.randn(2, 3, 1, 5, dtype=torch.float64)
    lp = x.log_softmax(-1)
    with use_backend(backend):
        loss = F.rnnt_loss(x, torch.zeros(2, 0, dtype=torch.long), [3, 1], [0, 0], reduction="none")
        t1 = F.rnnt_loss(
            x[:, :1], torch.zeros(2, 0, dtype=torch.long), [1, 1], [0, 0], reduction="none"
        )
    assert loss.tolist() == pytest.approx([-float(lp[0, :, 0, -1].sum()), -float(lp[1, 0, 0, -1])])
    assert t1.tolist() == pytest.approx((-lp[:, 0, 0, -1]).tolist())
    y = torch.randn(1, 1, 3, 4, dtype=torch.float64)
    lpy = y.log_softmax(-1)
    with use_backend(backend):
        one = F.rnnt_loss(y, torch.tensor([[1, 2]]), [1], [2], blank=0, reduction="none")
    assert float(one) == pytest.approx(-float(lpy[0, 0, 0, 1] + lpy[0, 0, 1, 2] + lpy[0, 0, 2, 0]))


def test_float32_agrees_with_float64():
    x, targets, t_len, u_len = _batch(5, t_max=40, u_max=12, v=30)
    l64 = F.rnnt_loss(x, targets, t_len, u_len)
    (g64,) = torch.autograd.grad(l64, x)
    x32 = x.detach().float().requires_grad_(True)
    l32 = F.rnnt_loss(x32, targets, t_len, u_len)
    (g32,) = torch.autograd.grad(l32, x32)
    assert float(l32.detach()) == pytest.approx(float(l64.detach()), rel=1e-5)
    torch.testing.assert_close(g32.double(), g64, rtol=1e-4, atol=1e-6)


def test_parallel_and_serial_kernels_agree(monkeypatch):
    from semiasr.semiring import kernels

    x, targets, t_len, u_len = _batch(6)
    out = {}
    for name, threshold in (("serial", 1 << 62), ("parallel", 0)):
        monkeypatch.setattr(kernels, "PARALLEL_MIN_CELLS", threshold)
        with use_backend("numba"):
            occ = F.rnnt_occupancy(x.detach(), targets, t_len, u_len)
            ent = F.rnnt_alignment_entropy(x.detach(), targets, t_len, u_len)
        out[name] = (occ.blank, occ.label, ent)
    for a, b in zip(out["serial"], out["parallel"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
