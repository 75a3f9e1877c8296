"""The RNN-T loss of an additive tanh joiner, computed without materialising its (B, T, U+1, V) logits.

The joiner of :mod:`semiasr.nn.joiner` computes, for every frame t and label position u,

    z(t, u) = f_t + g_u,   h = tanh(z),   logits(t, u) = W h + b,

where f = W_enc · enc + b_enc (B, T, J) and g = W_pred · pred + b_pred (B, U+1, J) are the projected
encoder and prediction-network outputs. Training through ``joiner(enc, pred)`` and then the loss keeps
z, h (B·T·(U+1)·J each) and the logits for the backward pass and streams all of them through memory
several times: on a CPU that memory traffic, not the arithmetic, is most of a small model's step.

:class:`JointRNNTLossFunction` instead walks the lattice in blocks of frames of one utterance (only
its valid t < T_b, u ≤ U_b region). Forward: per block, h, logits and the log-softmax normaliser give
the blank and next-label log-probs φ(t, u), y(t, u) (the tables of
:func:`semiasr.semiring.fast.rnnt_gather`); α, β and the arc occupancies o_φ, o_y follow as in
:class:`~semiasr.semiring.fast.RNNTLossFunction`. Backward applies, in each block,

    ∂L/∂logits = softmax · (o_φ + o_y) − [k = blank] o_φ − [k = y_{u+1}] o_y      (function merging)
    ∂L/∂W += (∂L/∂logits)ᵀ h,   ∂L/∂b += Σ ∂L/∂logits,   ∂L/∂z = (∂L/∂logits · W) ⊙ (1 − h²)
    ∂L/∂f_t = Σ_u ∂L/∂z(t, u),   ∂L/∂g_u = Σ_t ∂L/∂z(t, u).

Two passes compute it:

* **the CPU pass** (numba available, the default there): the matrix products and exp in torch,
  everything per row or per cell in numba kernels (``semiasr.semiring.kernels``): in float32
  h = tanh(f_t + g_u) (``joint_hidden``: a vectorised rational function of the float64 sum, within
  0.85 float32 ulps of its tanh; float64 keeps torch's tanh), the softmax
  normaliser and the two log-probs of each row in one pass, α, β and the occupancies of each
  utterance without float64 tables, the merged softmax gradient with its subnormals flushed in one
  pass, and ∂L/∂z summed into ∂L/∂f and ∂L/∂g in one more. The log-softmax needs no per-row maximum
  when the output layer's bound |logit_k| ≤ Σ_j |W_kj| + |b_k| keeps exp() in range (a trained
  joiner's: tens; float32 allows about 80), so exp(logits) serves both the normaliser and, divided
  by it, the softmax of the backward. h and exp(logits) of the blocks are kept for the backward up
  to ``_KEEP_BYTES`` (128 MiB; the demo's batches take about 40 MB), the rest is computed again.
  In float32 the backward computes only each frame's cells from the first to the last whose arc
  occupancy o_φ + o_y is above 1e-12 (``_SKIP_OCCUPANCY``): a cell below it changes the gradient
  by less than a float32 rounding of its scale, and on a trained model most cells are far below
  it (``benchmarks/joiner_loss.py`` reports the share computed). On real batches (J = 128, V = 28:
  eight of ``runs/mct21``'s target batches) forward + backward took 30.3 ms before the float32
  tanh kernel and the vectorised logits gradient and 24.7 after them (session 22, medians of
  three runs, ``docs/results/adaptation_session22.json``); in two runs of session 23, 19.5 and
  24.1 ms over every cell, 13.4 and 16.4 with the threshold, which left 26% of the cells to
  compute (2 threads, 2026-11-28, ``docs/results/adaptation_session23.json``).
* **the torch pass** (any device): vectorised torch per block of 2048 cells, small enough to stay
  in cache; nothing but the (B, T, U+1) tables is kept, so the backward computes h and the logits
  again.

Both equal ``rnnt_loss(joiner(enc, pred), ...)`` (tested to 1e-10 in float64, values and every
gradient; in float32 the CPU pass to 1e-5 of float64) at a peak memory far below the three to four
(B, T, U+1, J) tensors of the materialised joiner. Gradients that no input needs are skipped (a
frozen joiner costs no weight-gradient products); there is no double backward.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from semiasr.semiring import fast
from semiasr.semiring.fast import NEG, flush_subnormal_, rnnt_alpha_beta, rnnt_arc_occupancy

__all__ = ["EVERY_CELL", "JointRNNTLossFunction", "joint_blocks"]

_BLOCK_ROWS = 2048
"""Lattice cells (t, u) per block of the torch pass: h is then 2048 · J floats (1 MiB at J = 128),
cache-sized."""

_CPU_BLOCK_ROWS = 4096
"""Cells per block of the CPU pass: fewer, larger blocks than the torch pass's cost less Python per
cell; on the demo's batches 2048-8192 are equally fast within the noise, 1024 and 16384 slower."""

_CPU_PASS = True
"""Whether CPU tensors take the CPU pass when numba may run (``benchmarks/joiner_loss.py`` switches
it off to time the torch pass there)."""

_KEEP_BYTES = 128 << 20
"""The CPU pass keeps h and exp(logits) of the first blocks for the backward, up to this many bytes
in all (the demo's batches need about 40 MB); later blocks are computed again in the backward."""


_SKIP_OCCUPANCY = {torch.float32: 1e-12}
"""The CPU pass's backward leaves out the lattice cells whose arc occupancy o_φ + o_y is at most
this (per dtype; 0 for any other: only cells of occupancy exactly 0, whose gradient is exactly 0).
A cell left out has ∂L/∂logits of L1 norm at most 2e-12 s (s the utterance's incoming gradient), so
∂L/∂f_t[j] changes by at most 2e-12 (U+1) s max_k |W_kj|, where the frame's kept cells, whose blank
occupancies sum to 1, give it terms of order s max_k |W_kj|: for U+1 up to a few thousand that is
below one float32 rounding (6e-8) of the gradient's scale, and likewise for ∂L/∂g_u, ∂L/∂W and
∂L/∂b (relative to their scale: an entry far smaller than its tensor's largest, e.g. of a token
the lattice hardly uses, can move by more than its own rounding). Every frame keeps at least one
cell (its blank occupancies sum to 1); a block keeps none only in an utterance without a path."""

EVERY_CELL = {torch.float32: -1.0, torch.float64: -1.0}
"""A ``_SKIP_OCCUPANCY`` under which the backward computes every cell (as before session 23): the
benchmarks time the pass so, to attribute a change to the threshold."""


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
    index in [0, V). Cells past each utterance's lengths are never computed. On the CPU with numba
    (the ``backend`` allows it) the pass of :func:`_cpu_forward`, elsewhere :func:`_torch_forward`.
    """

    @staticmethod
    def forward(ctx, f, g, weight, bias, labels, logit_lengths, target_lengths, blank, backend):
        labels = labels.long()
        t_len = logit_lengths.tolist()
        u1_len = (target_lengths + 1).tolist()
        ctx.cpu = _CPU_PASS and fast._use_numba(f, backend)
        run = _cpu_forward if ctx.cpu else _torch_forward
        tables, log_z, keep = run(
            f, g, weight, bias, labels, t_len, u1_len, logit_lengths, target_lengths, blank,
            backend, any(ctx.needs_input_grad[:4]),
        )  # fmt: skip
        ctx.save_for_backward(f, g, weight, bias, labels, *tables)
        ctx.blank = blank
        ctx.lengths = (t_len, u1_len)
        ctx.keep = keep
        return (-log_z).to(f.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        f, g, weight, bias, labels, *tables = ctx.saved_tensors
        need = ctx.needs_input_grad[:4]
        grads = [torch.zeros_like(x) if n else None for x, n in zip((f, g, weight, bias), need)]
        run = _cpu_backward if ctx.cpu else _torch_backward
        run(f, g, weight, bias, labels, tables, grad_out, ctx.blank, ctx.lengths, ctx.keep, *grads)
        ctx.keep = None
        return (*grads, None, None, None, None, None)


# ------------------------------------------------------------------------------------- the CPU pass


def _cpu_forward(
    f, g, weight, bias, labels, t_len, u1_len, logit_lengths, target_lengths, blank, backend, grad
):
    """Per block of cells: h = tanh(f_t + g_u) (:func:`_cpu_hidden`) and the logits x = W h + b in
    torch (matrix units, vectorised exp), shifted by each row's maximum unless |x| ≤ Σ_j |W_kj| +
    |b_k| is small enough for exp(x) to stay normal (:func:`_shift_free`); e = exp(x); then one
    numba pass over the block's rows for the normaliser S = Σ e, the blank and next-label log-probs
    and, after the last block, α, β and the arc occupancies (``kernels.rnnt_occupancy``, without
    float64 α-β tables).
    h and e of the first blocks are kept for the backward (``_KEEP_BYTES``).
    Returns ((S, o_φ, o_y) (B, T, U+1) each and the kept h, exp(logits), log Z (B,), the blocks and
    how they were computed)."""
    k = fast._kernels
    bsz, t_max, j = f.shape
    v, dt = weight.shape[0], f.dtype
    shape = (bsz, t_max, g.shape[1])
    phi = torch.full(shape, NEG, dtype=dt)
    lab = torch.full(shape, NEG, dtype=dt)
    norm = torch.ones(shape, dtype=dt)
    blocks = list(joint_blocks(t_len, u1_len, _CPU_BLOCK_ROWS))
    cells = sum((t1 - t0) * u1 for _, t0, t1, u1 in blocks)
    keep_rows = min(cells, _KEEP_BYTES // ((j + v) * f.element_size())) if grad else 0
    h_kept = torch.empty(keep_rows, j, dtype=dt)
    e_kept = torch.empty(keep_rows, v, dtype=dt)
    shift = not _shift_free(weight, bias)
    w_t = weight.t()
    views = _kernel_views(f, g)
    lab_np, phi_np, lab_tab, norm_np = labels.numpy(), phi.numpy(), lab.numpy(), norm.numpy()
    off = 0
    for b, t0, t1, u1 in blocks:
        n = (t1 - t0) * u1
        kept = off + n <= keep_rows
        h = _cpu_hidden(f, g, views, b, t0, t1, u1, h_kept[off : off + n] if kept else None)
        x = torch.addmm(bias, h, w_t)
        if shift:
            x.sub_(x.amax(1, keepdim=True))
        e = torch.exp(x, out=e_kept[off : off + n]) if kept else x.exp()
        k.joint_tables(x.numpy(), e.numpy(), lab_np, b, t0, t1, u1, blank, phi_np, lab_tab, norm_np)
        off += n if kept else 0
    o_blank, o_label = torch.zeros_like(phi), torch.zeros_like(phi)
    log_z = torch.empty(bsz, dtype=torch.float64)
    k.pick(k.rnnt_occupancy, bsz, 8 * phi.numel())(
        phi_np, lab_tab, fast._np(logit_lengths, torch.int64),
        fast._np(target_lengths, torch.int64), o_blank.numpy(), o_label.numpy(), log_z.numpy(),
    )  # fmt: skip
    return (norm, o_blank, o_label, h_kept, e_kept), log_z, (blocks, off, shift)


def _cpu_backward(
    f, g, weight, bias, labels, tables, grad_out, blank, lengths, keep, gf, gg, gw, gb
):
    """Per block: the rows whose occupancy is above the dtype's ``_SKIP_OCCUPANCY``
    (``kernels.joint_active_rows``; all of them when none is below), and for those rows only:
    ∂L/∂logits from e / S and the occupancies in one numba pass (subnormals flushed); ∂L/∂W, ∂L/∂b
    and m = ∂L/∂logits · W in torch; ∂L/∂z = m ⊙ (1 − h²) summed into ∂L/∂f and ∂L/∂g in one more
    numba pass. Blocks whose h and e were not kept compute them again."""
    k = fast._kernels
    norm, o_blank, o_label, h_kept, e_kept = tables
    blocks, n_kept, shift = keep
    j, v, dt = f.shape[2], weight.shape[0], f.dtype
    rows = max((t1 - t0) * u1 for _, t0, t1, u1 in blocks) if blocks else 0
    d_buf = torch.empty(rows, v, dtype=dt)
    m_buf = torch.empty(rows, j, dtype=dt) if gf is not None or gg is not None else None
    h_buf, e_buf = torch.empty(rows, j, dtype=dt), torch.empty(rows, v, dtype=dt)
    active_buf = torch.empty(rows, dtype=torch.int64)
    eps = _SKIP_OCCUPANCY.get(dt, 0.0)
    none = torch.zeros(1, 1, 1, dtype=dt).numpy()
    gf_np = none if gf is None else gf.numpy()
    gg_np = none if gg is None else gg.numpy()
    tables = (norm.numpy(), o_blank.numpy(), o_label.numpy(), labels.numpy())
    scales = grad_out.double().tolist()
    w_t = weight.t()
    views = _kernel_views(f, g)  # for the blocks not kept
    off = 0
    for b, t0, t1, u1 in blocks:
        n = (t1 - t0) * u1
        cnt = k.joint_active_rows(*tables[1:3], b, t0, t1, u1, eps, active_buf.numpy())
        if off + n <= n_kept:
            h, e = h_kept[off : off + n], e_kept[off : off + n]
            off += n
        elif cnt == 0:
            continue
        else:
            h = _cpu_hidden(f, g, views, b, t0, t1, u1, None)
            e = torch.addmm(bias, h, w_t)
            if shift:
                e.sub_(e.amax(1, keepdim=True))
            e.exp_()
        if cnt == 0:
            continue
        active = active_buf[:cnt]
        if cnt < n:  # the rows that carry occupancy, gathered
            h = torch.index_select(h, 0, active, out=h_buf[:cnt])
            e = torch.index_select(e, 0, active, out=e_buf[:cnt])
        d = d_buf[:cnt]
        k.joint_logits_grad(
            e.numpy(), *tables, b, t0, u1, active.numpy(), scales[b], blank, d.numpy()
        )
        if gw is not None:
            gw.addmm_(d.t(), h)
        if gb is not None:
            gb += d.sum(0)
        if m_buf is not None:
            m = torch.mm(d, weight, out=m_buf[:cnt])
            k.joint_hidden_grad(m.numpy(), h.numpy(), b, t0, u1, active.numpy(), gf_np, gg_np,
                                gf is not None, gg is not None)  # fmt: skip


def _hidden(f: Tensor, g: Tensor, b: int, t0: int, t1: int, u1: int, out: Tensor | None) -> Tensor:
    """h = tanh(f_t + g_u) of one block, (τ·u1, J), written into ``out`` when given (torch: any
    device)."""
    j = f.shape[2]
    z = out.view(t1 - t0, u1, j) if out is not None else None
    return torch.add(f[b, t0:t1, None, :], g[b, None, :u1, :], out=z).tanh_().view(-1, j)


def _kernel_views(f: Tensor, g: Tensor) -> tuple | None:
    """The CPU pass's inputs of ``kernels.joint_hidden`` (f and g as numpy arrays, made once per
    pass), or None where it keeps torch's tanh (float64: the kernel's 2e-8 relative error would
    show there)."""
    return (f.detach().numpy(), g.detach().numpy()) if f.dtype == torch.float32 else None


def _cpu_hidden(f, g, views, b, t0, t1, u1, out):
    """h of one block for the CPU pass: in float32 from the numba kernel ``joint_hidden`` (a
    vectorised rational tanh of the float64 sum, within 0.85 float32 ulps of tanh of that sum), in
    float64 from :func:`_hidden`."""
    if views is None:
        return _hidden(f, g, b, t0, t1, u1, out)
    h = out if out is not None else torch.empty((t1 - t0) * u1, f.shape[2], dtype=f.dtype)
    fast._kernels.joint_hidden(*views, b, t0, t1, u1, h.numpy())
    return h


def _shift_free(weight: Tensor, bias: Tensor) -> bool:
    """Whether every logit W h + b (|h| ≤ 1) has exp() within the normal range of its dtype with room
    for the sum over V: then log-softmax needs no per-row maximum. A trained joiner's bound is
    usually tens (the demo's: 29), float32 allows about 80."""
    bound = float((weight.detach().abs().sum(1) + bias.detach().abs()).max())
    info = torch.finfo(weight.dtype)
    return bound <= min(math.log(info.max) - math.log(weight.shape[0]), -math.log(info.tiny)) - 2.0


# ----------------------------------------------------------------------------------- the torch pass


def _torch_forward(
    f, g, weight, bias, labels, t_len, u1_len, logit_lengths, target_lengths, blank, backend, grad
):
    """Per block: h, logits and the log-softmax normaliser give the blank and next-label log-probs
    (vectorised torch, any device); α, β and the arc occupancies follow. Nothing is kept but the
    (B, T, U+1) tables. Returns ((log-normaliser, o_φ, o_y), log Z, None)."""
    bsz, t_max, _j = f.shape
    u1_max = g.shape[1]
    phi = torch.full((bsz, t_max, u1_max), NEG, dtype=f.dtype, device=f.device)
    lab = torch.full_like(phi, NEG)
    lse = torch.zeros_like(phi)
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
    return (lse, o_blank, o_label), log_z, None


def _torch_backward(
    f, g, weight, bias, labels, tables, grad_out, blank, lengths, keep, gf, gg, gw, gb
):
    """Per block: recompute h and the logits, then the merged softmax gradient and its products."""
    lse, o_blank, o_label = tables
    t_len, u1_len = lengths
    dt = f.dtype
    flush = f.device.type == "cpu"
    w_t = weight.t()
    scales = grad_out.to(dt).tolist()
    for b, t0, t1, u1 in joint_blocks(t_len, u1_len, _BLOCK_ROWS):
        h, logits = _block_logits(f, g, w_t, bias, b, t0, t1, u1)  # (n, J), (n, V)
        ob = o_blank[b, t0:t1, :u1].to(dt).reshape(-1, 1) * scales[b]
        ol = o_label[b, t0:t1, :u1].to(dt).reshape(-1, 1) * scales[b]
        d = logits.sub_(lse[b, t0:t1, :u1].reshape(-1, 1)).exp_().mul_(ob + ol)
        d[:, blank : blank + 1] -= ob
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


def _block_logits(
    f: Tensor, g: Tensor, w_t: Tensor, bias: Tensor, b: int, t0: int, t1: int, u1: int
) -> tuple[Tensor, Tensor]:
    """h = tanh(f_t + g_u) (τ·u1, J) and the logits W h + b (τ·u1, V) of one block."""
    h = _hidden(f, g, b, t0, t1, u1, None)
    return h, torch.addmm(bias, h, w_t)
