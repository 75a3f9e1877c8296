"""The RNN-T loss of an additive tanh joiner, computed without materialising its (B, T, U+1, V) logits.

The joiner of :mod:`semiasr.nn.joiner` computes, for every frame t and label position u,

    z(t, u) = f_t + g_u,   h = tanh(z),   logits(t, u) = W h + b,

where f = W_enc · enc + b_enc (B, T, J) and g = W_pred · pred + b_pred (B, U+1, J) are the projected
encoder and prediction-network outputs. Training through ``joiner(enc, pred)`` and then the loss keeps
z, h (B·T·(U+1)·J each) and the logits for the backward pass and streams all of them through memory
several times: on a CPU that memory traffic, not the arithmetic, is most of a small model's step.

:class:`JointRNNTLossFunction` instead walks the lattice in blocks of frames of one utterance (only
its valid t < T_b, u ≤ U_b region), small enough to stay in cache. Forward: per block, h, logits and
the log-softmax normaliser give the blank and next-label log-probs φ(t, u), y(t, u) (the tables of
:func:`semiasr.semiring.fast.rnnt_gather`); α, β and the arc occupancies o_φ, o_y follow as in
:class:`~semiasr.semiring.fast.RNNTLossFunction`, and only f, g, W, b and the (B, T, U+1) tables are
kept. Backward recomputes each block's h and logits and applies, in the block,

    ∂L/∂logits = softmax · (o_φ + o_y) − [k = blank] o_φ − [k = y_{u+1}] o_y      (function merging)
    ∂L/∂W += (∂L/∂logits)ᵀ h,   ∂L/∂b += Σ ∂L/∂logits,   ∂L/∂z = (∂L/∂logits · W) ⊙ (1 − h²)
    ∂L/∂f_t = Σ_u ∂L/∂z(t, u),   ∂L/∂g_u = Σ_t ∂L/∂z(t, u).

The result equals ``rnnt_loss(joiner(enc, pred), ...)`` (tested to 1e-10 in float64, values and every
gradient) at a peak memory of one block instead of three to four (B, T, U+1, J) tensors, for the
price of computing h and the logits twice. Gradients that no input needs are skipped (a frozen
joiner costs no weight-gradient products); there is no double backward.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from semiasr.semiring.fast import NEG, flush_subnormal_, rnnt_alpha_beta, rnnt_arc_occupancy

__all__ = ["JointRNNTLossFunction", "joint_blocks"]

_BLOCK_ROWS = 2048
"""Lattice cells (t, u) per block: h is then 2048 · J floats (1 MiB at J = 128), cache-sized."""


def joint_blocks(t_lengths: list[int], u1_lengths: list[int], rows: int = _BLOCK_ROWS):
    """(b, t0, t1, u1) blocks: frames [t0, t1) of utterance b over its u1 = U_b + 1 label positions,
    each block about ``rows`` cells (at least one frame)."""
    for b, (t_b, u1) in enumerate(zip(t_lengths, u1_lengths, strict=True)):
        frames = max(1, rows // max(u1, 1))
        for t0 in range(0, t_b, frames):
            yield b, t0, min(t0 + frames, t_b), u1


class JointRNNTLossFunction(torch.autograd.Function):
    """(f (B, T, J), g (B, U+1, J), W (V, J), b (V,)) → −log P(y | x) per utterance (B,).

    ``labels`` (B, U+1) holds y_{u+1} at column u (anything valid in the last one); ``blank`` an
    index in [0, V). Cells past each utterance's lengths are never computed.
    """

    @staticmethod
    def forward(ctx, f, g, weight, bias, labels, logit_lengths, target_lengths, blank, backend):
        bsz, t_max, _j = f.shape
        u1_max = g.shape[1]
        phi = torch.full((bsz, t_max, u1_max), NEG, dtype=f.dtype, device=f.device)
        lab = torch.full_like(phi, NEG)
        lse = torch.zeros_like(phi)
        labels = labels.long()
        t_len = logit_lengths.tolist()
        u1_len = (target_lengths + 1).tolist()
        w_t = weight.t()
        for b, t0, t1, u1 in joint_blocks(t_len, u1_len, _BLOCK_ROWS):
            logits = _block_logits(f, g, w_t, bias, b, t0, t1, u1)[1]  # (τ·u1, V)
            s = torch.logsumexp(logits, dim=1).view(t1 - t0, u1)
            x = logits.view(t1 - t0, u1, -1)
            lse[b, t0:t1, :u1] = s
            phi[b, t0:t1, :u1] = x[..., blank] - s
            index = labels[b, None, :u1, None].expand(t1 - t0, u1, 1)
            lab[b, t0:t1, :u1] = x.gather(2, index).squeeze(2) - s
        phi.clamp_(min=NEG)
        lab.clamp_(min=NEG)
        alpha, beta, log_z = rnnt_alpha_beta(phi, lab, logit_lengths, target_lengths, backend)
        o_blank, o_label = rnnt_arc_occupancy(
            alpha, beta, phi, lab, log_z, logit_lengths, target_lengths
        )
        ctx.save_for_backward(f, g, weight, bias, labels, lse, o_blank, o_label)
        ctx.blank = blank
        ctx.lengths = (t_len, u1_len)
        return (-log_z).to(f.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        f, g, weight, bias, labels, lse, o_blank, o_label = ctx.saved_tensors
        t_len, u1_len = ctx.lengths
        need_f, need_g, need_w, need_b = ctx.needs_input_grad[:4]
        dt = f.dtype
        gf = torch.zeros_like(f) if need_f else None
        gg = torch.zeros_like(g) if need_g else None
        gw = torch.zeros_like(weight) if need_w else None  # (V, J)
        gb = torch.zeros_like(bias) if need_b else None
        flush = f.device.type == "cpu"
        w_t = weight.t()
        scales = grad_out.to(dt).tolist()
        for b, t0, t1, u1 in joint_blocks(t_len, u1_len, _BLOCK_ROWS):
            h, logits = _block_logits(f, g, w_t, bias, b, t0, t1, u1)  # (n, J), (n, V)
            ob = o_blank[b, t0:t1, :u1].to(dt).reshape(-1, 1) * scales[b]
            ol = o_label[b, t0:t1, :u1].to(dt).reshape(-1, 1) * scales[b]
            d = logits.sub_(lse[b, t0:t1, :u1].reshape(-1, 1)).exp_().mul_(ob + ol)
            d[:, ctx.blank : ctx.blank + 1] -= ob
            index = labels[b, None, :u1].expand(t1 - t0, u1).reshape(-1, 1)
            d.scatter_add_(1, index, -ol)
            if flush:
                flush_subnormal_(d)
            if gw is not None:
                gw.addmm_(d.t(), h)
            if gb is not None:
                gb += d.sum(0)
            if gf is None and gg is None:
                continue
            dz = (d @ weight).mul_(h.mul_(h).neg_().add_(1)).view(t1 - t0, u1, -1)  # (τ, u1, J)
            if gf is not None:
                gf[b, t0:t1] = dz.sum(1)
            if gg is not None:
                gg[b, :u1] += dz.sum(0)
        return gf, gg, gw, gb, None, None, None, None, None


def _block_logits(
    f: Tensor, g: Tensor, w_t: Tensor, bias: Tensor, b: int, t0: int, t1: int, u1: int
) -> tuple[Tensor, Tensor]:
    """h = tanh(f_t + g_u) (τ·u1, J) and the logits W h + b (τ·u1, V) of one block."""
    j = f.shape[2]
    h = torch.add(f[b, t0:t1, None, :], g[b, None, :u1, :]).tanh_().view(-1, j)
    return h, torch.addmm(bias, h, w_t)
