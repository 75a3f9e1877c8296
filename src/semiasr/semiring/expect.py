"""Alignment entropy and alignment KL with hand-written gradients (the fast path of the expectation
semirings).

With arc log-weights w, path score s(π) = Σ_{e∈π} w_e, posterior q(π) = exp(s(π) − log Z) and arc
occupancy μ_e = E_q[1_e]:

    H(q)        = log Z − E_q[s] = log Z − Σ_e μ_e w_e
    ∂H/∂w_e     = −Cov_q(1_e, s) = −μ_e (E_q[s | e ∈ π] − E_q[s])
    KL(q ‖ p)   = Σ_e μ^q_e (w^q_e − w^p_e) − log Z_q + log Z_p
    ∂KL/∂w^p_e  = μ^p_e − μ^q_e

These equal the totals of the Entropy and KL semirings ("Revisiting the Entropy Semiring for Neural
Speech Recognition", Chang et al., ICLR 2023) — the tests check one against the other — but cost
α-β passes instead of autograd through a loop: KL one for the student and one for the teacher,
entropy one that also carries the expected prefix / suffix scores (numba kernels on the CPU). On
other devices KL uses the torch α-β and entropy falls back to autograd through the Entropy-semiring
lattice, both pure torch; that lattice runs in float64 (exp(B − A) + A loses about |log Z|² · ε in
float32: 12 nats of 588 at T = 1500), whatever the input's dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

from semiasr.semiring import fast
from semiasr.semiring.ctc import ctc_lattice
from semiasr.semiring.rnnt import rnnt_lattice
from semiasr.semiring.semirings import ENTROPY, entropy_from_total

__all__ = ["ctc_expectation", "rnnt_expectation"]


def ctc_expectation(
    em_p: Tensor,
    em_q: Tensor | None,
    ext: Tensor,
    skip: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
) -> Tensor:
    """(B,) entropy of p's alignment posterior (em_q None) or KL(q ‖ p); em (B, T, S) state weights."""
    if em_q is not None:
        return _CTCKL.apply(em_p, em_q, ext, skip, input_lengths, target_lengths)
    if fast._use_numba(em_p, fast.BACKEND):
        return _CTCEntropy.apply(em_p, ext, input_lengths, target_lengths)
    frames = torch.arange(em_p.shape[1], device=em_p.device)
    valid = (frames[None, :] < input_lengths[:, None])[..., None]
    em = _finite_padding(em_p, valid)
    total, _ = ctc_lattice(ENTROPY, ENTROPY.lift(em), skip, input_lengths, target_lengths)
    return _entropy(total).to(em_p.dtype)


def _finite_padding(w: Tensor, valid: Tensor) -> Tensor:
    """w in float64 with −1 outside ``valid``: the lattice masks padding out, but a NaN or −∞
    there would still reach the gradient through the Entropy semiring's logaddexp (0 · NaN)."""
    return torch.where(valid, w.double(), -1.0)


def _entropy(total: Tensor) -> Tensor:
    """H = exp(B − A) + A ≥ 0 from an Entropy-semiring total (float64), and 0 with a zero gradient
    where log Z = A is the finite −∞ (every alignment crosses an arc of probability 0)."""
    ok = total[0] > fast.NEG / 2
    safe = torch.where(ok, total, 0.0)
    return torch.where(ok, entropy_from_total(safe).clamp(min=0.0), 0.0)


def _weighted(occ: Tensor, x: Tensor) -> Tensor:
    """occ · x with 0 wherever occ is 0, whatever x holds there (padding may be NaN or ±inf)."""
    return torch.where(occ > 0, occ * x, torch.zeros_like(occ))


class _CTCKL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, em_p, em_q, ext, skip, input_lengths, target_lengths):
        em_p = em_p.detach()
        if fast._use_numba(em_p, fast.BACKEND):
            grad = torch.zeros(em_p.shape, dtype=em_p.dtype)
            kl = torch.empty(em_p.shape[0], dtype=torch.float64)
            fast._kernels.pick(fast._kernels.ctc_kl, em_p.shape[0], 2 * em_p.numel())(
                fast._np(em_p),
                fast._np(em_q, em_p.dtype),
                fast._np(ext, torch.int64),
                fast._np(input_lengths, torch.int64),
                fast._np(target_lengths, torch.int64),
                grad.numpy(),
                kl.numpy(),
            )
            ctx.save_for_backward(grad)
            return kl.to(em_p.dtype)
        args = (ext, skip, input_lengths, target_lengths, fast.BACKEND)
        z_p, occ_p = fast.ctc_alpha_beta(em_p, *args)
        z_q, occ_q = fast.ctc_alpha_beta(em_q.detach(), *args)
        occ_q = occ_q.double()
        cross = _weighted(occ_q, em_q.double() - em_p.double()).sum(dim=(1, 2))
        ok = (z_p > fast.NEG / 2) & (z_q > fast.NEG / 2)
        diff = (occ_p.double() - occ_q) * ok[:, None, None]
        ctx.save_for_backward(diff.to(em_p.dtype))
        return torch.where(ok, cross - z_q + z_p, 0.0).to(em_p.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (diff,) = ctx.saved_tensors
        return grad_out[:, None, None] * diff, None, None, None, None, None


class _CTCEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, em, ext, input_lengths, target_lengths):
        grad = torch.zeros(em.shape, dtype=torch.float64)
        ent = torch.empty(em.shape[0], dtype=torch.float64)
        fast._kernels.pick(fast._kernels.ctc_entropy, em.shape[0], em.numel())(
            fast._np(em),
            fast._np(ext, torch.int64),
            fast._np(input_lengths, torch.int64),
            fast._np(target_lengths, torch.int64),
            grad.numpy(),
            ent.numpy(),
        )
        ctx.save_for_backward(grad.to(em.dtype))
        return ent.to(em.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad_out[:, None, None] * grad, None, None, None


def rnnt_expectation(
    phi_p: Tensor,
    lab_p: Tensor,
    phi_q: Tensor | None,
    lab_q: Tensor | None,
    logit_lengths: Tensor,
    target_lengths: Tensor,
) -> Tensor:
    """(B,) entropy of p's RNN-T alignment posterior (phi_q None) or KL(q ‖ p); tables (B, T, U+1)."""
    if phi_q is not None:
        return _RNNTKL.apply(phi_p, lab_p, phi_q, lab_q, logit_lengths, target_lengths)
    if fast._use_numba(phi_p, fast.BACKEND):
        return _RNNTEntropy.apply(phi_p, lab_p, logit_lengths, target_lengths)
    t = torch.arange(phi_p.shape[1], device=phi_p.device)
    u = torch.arange(phi_p.shape[2], device=phi_p.device)
    valid = (t[None, :, None] < logit_lengths[:, None, None]) & (
        u[None, None, :] <= target_lengths[:, None, None]
    )
    phi, lab = _finite_padding(phi_p, valid), _finite_padding(lab_p, valid)
    total, _ = rnnt_lattice(
        ENTROPY, ENTROPY.lift(phi), ENTROPY.lift(lab), logit_lengths, target_lengths
    )
    return _entropy(total).to(phi_p.dtype)


def _rnnt_occ(phi, lab, logit_lengths, target_lengths):
    alpha, beta, log_z = fast.rnnt_alpha_beta(phi, lab, logit_lengths, target_lengths, fast.BACKEND)
    o_b, o_l = fast.rnnt_arc_occupancy(alpha, beta, phi, lab, log_z, logit_lengths, target_lengths)
    return log_z, o_b, o_l


class _RNNTKL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, phi_p, lab_p, phi_q, lab_q, logit_lengths, target_lengths):
        phi_p, lab_p = phi_p.detach(), lab_p.detach()
        both = _rnnt_occ(
            torch.cat([phi_p, phi_q]),
            torch.cat([lab_p, lab_q]),
            torch.cat([logit_lengths, logit_lengths]),
            torch.cat([target_lengths, target_lengths]),
        )
        bsz = phi_p.shape[0]
        (z_p, ob_p, ol_p), (z_q, ob_q, ol_q) = ((x[:bsz] for x in both), (x[bsz:] for x in both))
        cross = _weighted(ob_q, phi_q.double() - phi_p.double()) + _weighted(
            ol_q, lab_q.double() - lab_p.double()
        )
        ok = ((z_p > fast.NEG / 2) & (z_q > fast.NEG / 2))[:, None, None]
        ctx.save_for_backward(
            ((ob_p - ob_q) * ok).to(phi_p.dtype), ((ol_p - ol_q) * ok).to(phi_p.dtype)
        )
        kl = torch.where(ok[:, 0, 0], cross.sum(dim=(1, 2)) - z_q + z_p, 0.0)
        return kl.to(phi_p.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        d_phi, d_lab = ctx.saved_tensors
        g = grad_out[:, None, None]
        return g * d_phi, g * d_lab, None, None, None, None


class _RNNTEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, phi, lab, logit_lengths, target_lengths):
        g_phi = torch.zeros(phi.shape, dtype=torch.float64)
        g_lab = torch.zeros(phi.shape, dtype=torch.float64)
        ent = torch.zeros(phi.shape[0], dtype=torch.float64)
        fast._kernels.pick(fast._kernels.rnnt_entropy, phi.shape[0], 8 * phi.numel())(
            fast._np(phi, torch.float64),
            fast._np(lab, torch.float64),
            fast._np(logit_lengths, torch.int64),
            fast._np(target_lengths, torch.int64),
            g_phi.numpy(),
            g_lab.numpy(),
            ent.numpy(),
        )
        ctx.save_for_backward(g_phi.to(phi.dtype), g_lab.to(phi.dtype))
        return ent.to(phi.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        g_phi, g_lab = ctx.saved_tensors
        g = grad_out[:, None, None]
        return g * g_phi, g * g_lab, None, None
