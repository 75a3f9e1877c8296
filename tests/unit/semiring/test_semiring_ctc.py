"""semiasr.functional.ctc_loss against torch.nn.functional.ctc_loss, and the CTC edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from semiasr import functional as F
from semiasr.errors import AlignmentError
from semiasr.semiring import use_backend

BACKENDS = ["numba", "torch"]


def _batch(seed, dtype, bsz=5, t_max=30, v=7, u_max=8, blank=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(bsz, t_max, v, generator=g, dtype=torch.float64).to(dtype)
    symbols = torch.tensor([s for s in range(v) if s != blank])
    targets = symbols[torch.randint(0, v - 1, (bsz, u_max), generator=g)]
    targets[0, 2] = targets[0, 1]  # a repeat
    in_len = torch.randint(u_max * 2, t_max + 1, (bsz,), generator=g)
    in_len[0] = t_max
    tgt_len = torch.randint(0, u_max + 1, (bsz,), generator=g)
    tgt_len[0] = u_max
    return logits.requires_grad_(True), targets, in_len, tgt_len


def _both(logits, targets, in_len, tgt_len, blank, reduction, zero_infinity=False):
    ours = F.ctc_loss(
        logits.log_softmax(-1), targets, in_len, tgt_len, blank, reduction, zero_infinity
    )
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    ref = torch.nn.functional.ctc_loss(
        logits.log_softmax(-1).transpose(0, 1),
        targets,
        in_len,
        tgt_len,
        blank,
        reduction,
        zero_infinity,
    )
    (g_ref,) = torch.autograd.grad(ref.sum(), logits)
    return ours, ref, g_ours, g_ref


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("blank", [0, 3])
def test_matches_torch_float64(backend, reduction, blank):
    logits, targets, in_len, tgt_len = _batch(1, torch.float64, blank=blank)
    with use_backend(backend):
        ours, ref, g_ours, g_ref = _both(logits, targets, in_len, tgt_len, blank, reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_torch_float32_long(backend):
    logits, targets, in_len, tgt_len = _batch(2, torch.float32, bsz=4, t_max=200, v=20, u_max=40)
    with use_backend(backend):
        ours, ref, g_ours, g_ref = _both(logits, targets, in_len, tgt_len, 0, "mean")
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-4)
    # torch's float32 kernel is the less accurate of the two: compare both with float64 torch.
    x64 = logits.detach().double().requires_grad_(True)
    _, _ref64, _, g_ref64 = _both(x64, targets, in_len, tgt_len, 0, "mean")
    assert (g_ours.double() - g_ref64).abs().max() <= (g_ref.double() - g_ref64).abs().max()
    torch.testing.assert_close(g_ours.double(), g_ref64, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_infeasible_gives_inf_or_zero_and_finite_gradient(backend):
    logits = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([[1, 1, 2], [1, 2, 3], [1, 2, 0]])
    in_len = torch.tensor([4, 2, 4])  # utt 0: 3 labels + 1 repeat = 4 ok; utt 1: 3 > 2 frames
    tgt_len = torch.tensor([3, 3, 2])
    with use_backend(backend):
        for zero_inf, fill in ((False, math.inf), (True, 0.0)):
            loss = F.ctc_loss(logits.log_softmax(-1), targets, in_len, tgt_len, 0, "none", zero_inf)
            ref = torch.nn.functional.ctc_loss(
                logits.log_softmax(-1).transpose(0, 1),
                targets,
                in_len,
                tgt_len,
                0,
                "none",
                zero_inf,
            )
            assert loss[1] == fill and ref[1] == fill
            torch.testing.assert_close(loss[[0, 2]], ref[[0, 2]])
            (g,) = torch.autograd.grad(loss[[0, 2]].sum() + loss[1] * 0, logits)
            assert torch.isfinite(g).all() and g[1].abs().max() == 0
            (g,) = torch.autograd.grad(
                F.ctc_loss(logits.log_softmax(-1), targets, in_len, tgt_len, zero_infinity=True),
                logits,
            )
            assert torch.isfinite(g).all()


def test_repeat_needs_two_frames():
    lp = torch.randn(1, 2, 3, dtype=torch.float64).log_softmax(-1)
    loss = F.ctc_loss(lp, torch.tensor([[1, 1]]), torch.tensor([2]), torch.tensor([2]))
    assert loss == math.inf
    loss = F.ctc_loss(lp, torch.tensor([[1, 2]]), [2], [2], reduction="none")
    assert float(loss) == pytest.approx(-float(lp[0, 0, 1] + lp[0, 1, 2]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_lengths_equal_running_alone(backend):
    logits, targets, in_len, tgt_len = _batch(3, torch.float64)
    lp = logits.detach().log_softmax(-1)
    with use_backend(backend):
        batch = F.ctc_loss(lp, targets, in_len, tgt_len, reduction="none")
        ent = F.ctc_alignment_entropy(lp, targets, in_len, tgt_len)
        for b in range(lp.shape[0]):
            t, u = int(in_len[b]), int(tgt_len[b])
            alone = F.ctc_loss(
                lp[b : b + 1, :t], targets[b : b + 1, :u], [t], [u], reduction="none"
            )
            h = F.ctc_alignment_entropy(lp[b : b + 1, :t], targets[b : b + 1, :u], [t], [u])
            assert float(alone) == pytest.approx(float(batch[b]), rel=1e-12)
            assert float(h) == pytest.approx(float(ent[b]), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_frame_and_empty_target(backend):
    lp = torch.randn(2, 1, 4, dtype=torch.float64).log_softmax(-1)
    with use_backend(backend):
        loss = F.ctc_loss(lp, torch.tensor([[2], [0]]), [1, 1], [1, 0], blank=0, reduction="none")
        occ = F.ctc_occupancy(lp, torch.tensor([[2], [0]]), [1, 1], [1, 0])
    assert loss.tolist() == pytest.approx([-float(lp[0, 0, 2]), -float(lp[1, 0, 0])])
    assert occ[0, 0].tolist() == pytest.approx([0.0, 1.0, 0.0])
    assert occ[1, 0, 0] == pytest.approx(1.0)


def test_occupancy_rows_sum_to_one_and_backends_agree():
    logits, targets, in_len, tgt_len = _batch(4, torch.float64)
    lp = logits.detach().log_softmax(-1)
    occ = {}
    for backend in BACKENDS:
        with use_backend(backend):
            occ[backend] = F.ctc_occupancy(lp, targets, in_len, tgt_len)
    generic = F.ctc_occupancy(lp.requires_grad_(True), targets, in_len, tgt_len)
    torch.testing.assert_close(occ["numba"], occ["torch"])
    torch.testing.assert_close(occ["numba"], generic.detach())
    frames = torch.arange(lp.shape[1]) < in_len[:, None]
    torch.testing.assert_close(occ["numba"].sum(-1), frames.double())


def test_user_errors_name_the_utterance():
    lp = torch.randn(2, 5, 4).log_softmax(-1)
    with pytest.raises(AlignmentError, match="utterance 1: input_length 6"):
        F.ctc_loss(lp, torch.ones(2, 2, dtype=torch.long), [5, 6], [2, 2])
    with pytest.raises(AlignmentError, match="utterance 0: target 1 = 9"):
        F.ctc_loss(lp, torch.tensor([[1, 9], [1, 1]]), [5, 5], [2, 2])
    with pytest.raises(AlignmentError, match="reduction"):
        F.ctc_loss(lp, torch.ones(2, 2, dtype=torch.long), [5, 5], [2, 2], reduction="avg")


def test_parallel_and_serial_kernels_agree(monkeypatch):
    from semiasr.semiring import kernels

    logits, targets, in_len, tgt_len = _batch(6, torch.float64)
    lp = logits.detach().log_softmax(-1)
    out = {}
    for name, threshold in (("serial", 1 << 62), ("parallel", 0)):
        monkeypatch.setattr(kernels, "PARALLEL_MIN_CELLS", threshold)
        with use_backend("numba"):
            out[name] = (
                F.ctc_occupancy(lp, targets, in_len, tgt_len),
                F.ctc_alignment_entropy(lp, targets, in_len, tgt_len),
            )
    for a, b in zip(out["serial"], out["parallel"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _kernel_run(fn, lp, targets, in_len, tgt_len, blank=0):
    """One utterance-level kernel over a batch → (log Z per utterance, occupancies)."""
    import numpy as np

    from semiasr.semiring.ctc import ctc_extended_labels, ctc_states

    ext, _skip = ctc_extended_labels(targets, blank)
    em = ctc_states(lp, ext).clamp(min=-1e30).numpy()
    occ = np.zeros(em.shape)
    z = [
        fn(em, ext.numpy(), b, int(in_len[b]), 2 * int(tgt_len[b]) + 1, occ[b])
        for b in range(em.shape[0])
    ]
    return torch.tensor(z, dtype=torch.float64), torch.from_numpy(occ)


def test_scaled_kernel_is_used_and_equals_the_log_space_kernel():
    """On ordinary inputs the probability-domain (scaled) α-β runs — no fallback — and gives the
    log-space kernel's log Z and occupancies to 1e-12."""
    from semiasr.semiring import kernels

    logits, targets, in_len, tgt_len = _batch(7, torch.float64, bsz=6, t_max=60, u_max=12)
    lp = logits.detach().log_softmax(-1)
    z_scaled, occ_scaled = _kernel_run(kernels._ctc_utterance_scaled, lp, targets, in_len, tgt_len)
    z_log, occ_log = _kernel_run(kernels._ctc_utterance, lp, targets, in_len, tgt_len)
    assert not torch.isnan(z_scaled).any()
    torch.testing.assert_close(z_scaled, z_log, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(occ_scaled, occ_log, rtol=1e-10, atol=1e-12)
    h_scaled, g_scaled = _kernel_run(kernels._ctc_entropy_scaled, lp, targets, in_len, tgt_len)
    h_log, g_log = _kernel_run(kernels._ctc_entropy_log, lp, targets, in_len, tgt_len)
    assert not torch.isnan(h_scaled).any() and (h_scaled > 0).any()
    torch.testing.assert_close(h_scaled, h_log, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(g_scaled, g_log, rtol=1e-8, atol=1e-10)


def test_extreme_log_prob_spreads_fall_back_to_log_space_exactly():
    """Paths 2000 nats apart: the scaled α would underflow and lose the path that finishes, so the
    kernel must notice and answer in log space — equal to the generic Log-semiring lattice."""
    from semiasr.semiring import kernels

    t_max, v = 12, 5
    targets = torch.tensor([[1, 2, 3]])
    g = torch.Generator().manual_seed(8)
    lp = torch.randn(1, t_max, v, generator=g, dtype=torch.float64).log_softmax(-1)
    lp[0, :6, 1:] -= 2000.0  # labels are nearly impossible early on: blanks dominate every frame
    lp[0, 6:, 0] -= 2000.0  # … and blanks late, so the finishing paths were ~1e-870 of frame mass
    lp = lp.log_softmax(-1)
    in_len, tgt_len = torch.tensor([t_max]), torch.tensor([3])
    z_scaled, _ = _kernel_run(kernels._ctc_utterance_scaled, lp, targets, in_len, tgt_len)
    assert torch.isnan(z_scaled).all()  # the scaled pass refused
    with use_backend("numba"):
        fast = F.ctc_loss(lp, targets, in_len, tgt_len, reduction="none")
        occ = F.ctc_occupancy(lp, targets, in_len, tgt_len)
    ref = -F.ctc_semiring_total("log", lp, targets, in_len, tgt_len)
    assert math.isfinite(float(fast[0]))
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=0)
    torch.testing.assert_close(occ.sum(-1)[0], torch.ones(t_max, dtype=torch.float64))
    h_scaled, _ = _kernel_run(kernels._ctc_entropy_scaled, lp, targets, in_len, tgt_len)
    assert torch.isnan(h_scaled).all()
    teacher = lp.flip(-1).log_softmax(-1)  # another distribution over the same lattice
    with use_backend("numba"):
        h = F.ctc_alignment_entropy(lp, targets, in_len, tgt_len)
        kl = F.ctc_alignment_kl(lp, teacher, targets, in_len, tgt_len)
    h_ref = F.ctc_semiring_total("entropy", lp, targets, in_len, tgt_len)
    kl_ref = F.ctc_semiring_total("kl", lp, targets, in_len, tgt_len, teacher=teacher)
    torch.testing.assert_close(h, h_ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(kl, kl_ref, rtol=1e-9, atol=1e-9)
