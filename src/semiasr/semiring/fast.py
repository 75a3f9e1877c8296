"""Fast Log-semiring forward-backward for the CTC and RNN-T losses, with hand-written gradients.

CTC (Graves et al., 2006): gather the (B, T, 2U+1) state emissions once, run α and β (numba on the
CPU, a vectorised torch loop elsewhere), and return −log Z; the gradient w.r.t. the log-probs is
−occupancy scattered back onto the vocabulary (the exact derivative; log_softmax's backward turns it
into torch's gradient w.r.t. the logits).

RNN-T (Graves, 2012), with "function merging" (Li et al., "Improving RNN transducer modeling for
end-to-end speech recognition", 2019): the (B, T, U+1, V) logits are read once in row chunks to get the
log-softmax normaliser and the two used log-probs, blank φ(t, u) and next label y(t, u); α and β run on
these (B, T, U+1) tables; the backward writes

    ∂(−log Z)/∂logits[t, u, k] = softmax_k · γ(t, u) − [k = blank] o_φ(t, u) − [k = y_{u+1}] o_y(t, u)

(γ = state occupancy, o = arc occupancies) straight into one gradient buffer, chunk by chunk. Peak
memory: the logits, that buffer, a chunk of ≤ 1/8 of the logits and (B, T, U+1) tables (logits that
are not contiguous, or in half precision, are first copied once). torch indexes with int64, numba with
intp, so more than 2³¹ elements are fine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

from semiasr.semiring.ctc import ctc_states

try:
    from semiasr.semiring import kernels as _kernels
except ImportError:  # pragma: no cover - numba is a declared dependency
    _kernels = None

__all__ = [
    "CTCLossFunction",
    "RNNTLossFunction",
    "ctc_alpha_beta",
    "rnnt_alpha_beta",
    "rnnt_arc_occupancy",
    "rnnt_gather",
    "use_backend",
]

NEG = -1e30
_CHUNK_ELEMS = 1 << 22  # the smallest chunk worth a pass of its own (16 MB of float32)

BACKEND: str | None = None
"""None: numba on the CPU when available, torch elsewhere; "torch" or "numba" to force one."""


@contextlib.contextmanager
def use_backend(name: str | None) -> Iterator[None]:
    """Run the lattices with one backend ("torch", "numba" or None = automatic) inside the block."""
    global BACKEND
    if name not in (None, "torch", "numba"):
        raise ValueError(f"unknown backend {name!r}")
    old, BACKEND = BACKEND, name
    try:
        yield
    finally:
        BACKEND = old


def _use_numba(x: Tensor, backend: str | None) -> bool:
    """numba for CPU tensors unless the torch backend is asked for; torch on every other device."""
    if _kernels is None or x.device.type != "cpu":
        return False
    return backend != "torch"


def _np(x: Tensor, dtype: torch.dtype | None = None):
    return x.detach().to(dtype or x.dtype).contiguous().numpy()


# ----------------------------------------------------------------------------------------- CTC


def ctc_alpha_beta(
    em: Tensor,
    ext: Tensor,
    skip: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    backend: str | None = None,
) -> tuple[Tensor, Tensor]:
    """em (B, T, S) state log-weights → log Z (B,) float64 and state occupancies (B, T, S).

    Occupancies are 0 past the lengths and for utterances without any path.
    """
    if _use_numba(em, backend):
        occ = torch.zeros(em.shape, dtype=em.dtype)
        log_z = torch.empty(em.shape[0], dtype=torch.float64)
        _kernels.pick(_kernels.ctc_alpha_beta, em.shape[0], em.numel())(
            _np(em),
            _np(ext, torch.int64),
            _np(input_lengths, torch.int64),
            _np(target_lengths, torch.int64),
            occ.numpy(),
            log_z.numpy(),
        )
        return log_z.to(em.device), occ.to(em.device)
    return _ctc_alpha_beta_torch(em, skip, input_lengths, target_lengths)


def _ctc_step(prev: Tensor, skip: Tensor, neg: Tensor, forward: bool) -> Tensor:
    """One ⊕ over the three CTC predecessors (forward) or successors (backward) of every state.

    prev, skip, neg: (B, S); neg is filled with NEG.
    """
    s_max = prev.shape[1]
    if forward:
        padded = torch.cat([neg, neg, prev], dim=1)
        p1 = padded[:, 2 * s_max - 1 : 3 * s_max - 1]
        p2 = torch.where(skip, padded[:, 2 * s_max - 2 : 3 * s_max - 2], neg)
    else:
        p1 = torch.cat([prev, neg], dim=1)[:, 1 : s_max + 1]
        p2 = torch.cat([torch.where(skip, prev, neg), neg, neg], dim=1)[:, 2 : s_max + 2]
    return torch.logsumexp(torch.stack([prev, p1, p2]), dim=0)


def _ctc_alpha_beta_torch(
    em: Tensor, skip: Tensor, input_lengths: Tensor, target_lengths: Tensor
) -> tuple[Tensor, Tensor]:
    bsz, t_max, s_max = em.shape
    em = em.double()
    negs = torch.full((bsz, s_max), NEG, dtype=em.dtype, device=em.device)
    states = torch.arange(s_max, device=em.device)
    alpha = torch.where(states < 2, em[:, 0], negs)
    alphas = [alpha]
    for t in range(1, t_max):
        new = _ctc_step(alpha, skip, negs, True) + em[:, t]
        alpha = torch.where((t < input_lengths)[:, None], new, alpha)
        alphas.append(alpha)
    end = 2 * target_lengths[:, None]
    finals = (states == end) | ((states == end - 1) & (end > 0))
    log_z = torch.logsumexp(torch.where(finals, alpha, negs), dim=1)
    at_end = torch.where(finals, 0.0, negs)
    beta = at_end
    occ = torch.empty_like(em)
    for t in range(t_max - 1, -1, -1):
        if t < t_max - 1:
            rec = _ctc_step(beta + em[:, t + 1], skip, negs, False)
            beta = torch.where((t + 1 < input_lengths)[:, None], rec, at_end)
        occ[:, t] = torch.exp(alphas[t] + beta - log_z[:, None])
    live = (torch.arange(t_max, device=em.device) < input_lengths[:, None])[:, :, None]
    live = live & (log_z > NEG / 2)[:, None, None]
    return log_z, torch.where(live, occ, 0.0)


class CTCLossFunction(torch.autograd.Function):
    """−log Z of the CTC lattice per utterance; backward: −occupancy on the used (t, symbol) cells."""

    @staticmethod
    def forward(ctx, log_probs, ext, skip, input_lengths, target_lengths, keep, backend):
        em = ctc_states(log_probs.detach(), ext).clamp_(min=NEG)  # −inf → the finite −∞
        log_z, occ = ctc_alpha_beta(em, ext, skip, input_lengths, target_lengths, backend)
        occ = occ.to(log_probs.dtype).mul_(keep[:, None, None])
        ctx.save_for_backward(occ, ext)
        ctx.shape = log_probs.shape
        return (-log_z).to(log_probs.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        occ, ext = ctx.saved_tensors
        bsz, t_max, v = ctx.shape
        scale = -grad_out.to(occ.dtype)[:, None, None]
        grad = torch.zeros(ctx.shape, dtype=occ.dtype, device=occ.device)
        idx = ext.unsqueeze(1).expand(bsz, t_max, ext.shape[1])
        if v <= ext.shape[1]:  # scale whichever of the two tables is smaller, without a copy
            return grad.scatter_add_(2, idx, occ).mul_(scale), None, None, None, None, None, None
        return grad.scatter_add_(2, idx, occ * scale), None, None, None, None, None, None


# --------------------------------------------------------------------------------------- RNN-T


def _rows(n_rows: int, v: int):
    """Row ranges for the passes over the logits: 8 chunks, each ≥ 2²² elements when there are
    that many (fewer, larger ops: every op is a thread-pool barrier). The forward's one temporary is
    a chunk, so the logits' forward + backward peak stays logits + one buffer of their size."""
    step = max(-(-n_rows // 8), _CHUNK_ELEMS // max(v, 1), 1)
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def rnnt_gather(
    logits: Tensor, labels: Tensor, blank: int, fused: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Read (B, T, U+1, V) logits once → log-normaliser, blank and next-label log-probs (B, T, U+1).

    ``labels`` (B, U+1) holds y_{u+1} at column u (any valid id in the last column). Without
    ``fused`` the logits are log-probs already and the normaliser is 0.
    """
    bsz, t_max, u1, v = logits.shape
    x = logits.detach().reshape(-1, v)
    lab_rows = labels[:, None, :].expand(bsz, t_max, u1).reshape(-1, 1)
    lse = torch.zeros(x.shape[0], dtype=logits.dtype, device=logits.device)
    if fused:
        for rows in _rows(x.shape[0], v):
            chunk = x[rows]
            m = chunk.amax(dim=1, keepdim=True)
            s = (chunk - m).exp_().sum(dim=1)
            lse[rows] = m.squeeze(1) + s.log()
    phi = (x[:, blank] - lse).clamp_(min=NEG)  # a −inf logit becomes the finite −∞
    lab = (x.gather(1, lab_rows).squeeze(1) - lse).clamp_(min=NEG)
    shape = (bsz, t_max, u1)
    return lse.view(shape), phi.view(shape), lab.view(shape)


def rnnt_alpha_beta(
    phi: Tensor,
    lab: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    backend: str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(B, T, U+1) blank / label log-probs → α, β (B, T, U+1) and log Z (B,), all float64.

    β(t, u) includes the final blank; cells past the lengths hold NEG.
    """
    if _use_numba(phi, backend):
        alpha = torch.full(phi.shape, NEG, dtype=torch.float64)
        beta = torch.full(phi.shape, NEG, dtype=torch.float64)
        log_z = torch.empty(phi.shape[0], dtype=torch.float64)
        _kernels.pick(_kernels.rnnt_alpha_beta, phi.shape[0], 8 * phi.numel())(
            _np(phi, torch.float64),
            _np(lab, torch.float64),
            _np(logit_lengths, torch.int64),
            _np(target_lengths, torch.int64),
            alpha.numpy(),
            beta.numpy(),
            log_z.numpy(),
        )
        dev = phi.device
        return alpha.to(dev), beta.to(dev), log_z.to(dev)
    return _rnnt_alpha_beta_torch(phi.double(), lab.double(), logit_lengths, target_lengths)


def _diagonals(init: Tensor, left: Tensor, below: Tensor) -> Tensor:
    """D_0 = [init, NEG, …]; D_n[u] = logaddexp(D_{n−1}[u] + left[n, u], D_{n−1}[u−1] + below[n, u]).

    left, below: (B, N, U+1) skewed arc weights → all diagonals (B, N, U+1).
    """
    bsz, n_diag, u1 = left.shape
    neg = torch.full((bsz, 1), NEG, dtype=left.dtype, device=left.device)
    diag = torch.cat([init[:, None], neg.expand(bsz, u1 - 1)], dim=1)
    out = [diag]
    for n in range(1, n_diag):
        shifted = torch.cat([neg, diag[:, :-1]], dim=1)
        diag = torch.logaddexp(diag + left[:, n], shifted + below[:, n])
        out.append(diag)
    return torch.stack(out, dim=1)


def _skew_index(t_max: int, u1: int, dev: torch.device) -> tuple[Tensor, Tensor]:
    n = torch.arange(t_max + u1 - 1, device=dev)[:, None]
    u = torch.arange(u1, device=dev)[None, :]
    return n, u


def _take(table: Tensor, t: Tensor, u: Tensor, valid: Tensor) -> Tensor:
    """table (B, T, U1) at per-utterance index grids t, u (B, ...) → NEG where not valid."""
    bsz, t_max, u1 = table.shape
    flat = (t.clamp(0, t_max - 1) * u1 + u.clamp(0, u1 - 1)).reshape(bsz, -1)
    out = table.reshape(bsz, -1).gather(1, flat).reshape(t.shape)
    return torch.where(valid, out, torch.full_like(out, NEG))


def _rnnt_alpha_beta_torch(
    phi: Tensor, lab: Tensor, logit_lengths: Tensor, target_lengths: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    bsz, t_max, u1 = phi.shape
    n, u = _skew_index(t_max, u1, phi.device)
    n, u = n.expand(bsz, -1, -1), u.expand(bsz, t_max + u1 - 1, -1)
    tb = logit_lengths[:, None, None]
    ub = target_lengths[:, None, None]
    zero = torch.zeros(bsz, dtype=phi.dtype, device=phi.device)
    # α: arcs enter (n − u, u) from (n − u − 1, u) (blank) and (n − u, u − 1) (label).
    left = _take(phi, n - u - 1, u, (n - u - 1 >= 0) & (n - u - 1 < t_max))
    below = _take(lab, n - u, u - 1, (n - u >= 0) & (n - u < t_max) & (u >= 1))
    d_alpha = _diagonals(zero, left, below)
    # β in reversed coordinates t' = T_b − 1 − t, u' = U_b − u: arcs leave the destination cell.
    tr, ur = tb - 1 - (n - u), ub - u
    ok = (n - u >= 0) & (tr >= 0) & (ur >= 0)
    left = _take(phi, tr, ur, ok)
    below = _take(lab, tr, ur, ok & (u >= 1))
    d_beta = _diagonals(_take(phi, tb[:, 0] - 1, ub[:, 0], tb[:, 0] > 0)[:, 0], left, below)
    t = torch.arange(t_max, device=phi.device)[None, :, None]
    uu = torch.arange(u1, device=phi.device)[None, None, :]
    valid = (t < tb) & (uu <= ub)
    alpha = _take_diag(d_alpha, t + uu, uu.expand_as(t + uu), valid)
    beta = _take_diag(d_beta, (tb - 1 - t) + (ub - uu), ub - uu, valid)
    return alpha, beta, beta[:, 0, 0]


def _take_diag(diags: Tensor, n: Tensor, u: Tensor, valid: Tensor) -> Tensor:
    """Unskew: diags (B, N, U1) at (n, u) grids of shape (B, T, U1)."""
    bsz, n_diag, u1 = diags.shape
    shape = torch.broadcast_shapes(n.shape, u.shape, valid.shape)
    flat = (n.clamp(0, n_diag - 1) * u1 + u.clamp(0, u1 - 1)).expand(shape).reshape(bsz, -1)
    out = diags.reshape(bsz, -1).gather(1, flat).reshape(shape)
    return torch.where(valid.expand(shape), out, torch.full_like(out, NEG))


def rnnt_arc_occupancy(
    alpha: Tensor,
    beta: Tensor,
    phi: Tensor,
    lab: Tensor,
    log_z: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
) -> tuple[Tensor, Tensor]:
    """Posterior of every blank and label arc, (B, T, U+1) each (0 off the lattice)."""
    _bsz, t_max, u1 = alpha.shape
    t = torch.arange(t_max, device=alpha.device)[None, :, None]
    u = torch.arange(u1, device=alpha.device)[None, None, :]
    tb, ub = logit_lengths[:, None, None], target_lengths[:, None, None]
    neg_row = torch.full_like(beta[:, :1], NEG)
    beta_next_t = torch.cat([beta[:, 1:], neg_row], dim=1)
    beta_next_t = torch.where((t == tb - 1) & (u == ub), 0.0, beta_next_t)
    beta_next_u = torch.cat([beta[:, :, 1:], torch.full_like(beta[:, :, :1], NEG)], dim=2)
    z = log_z[:, None, None]
    valid = (t < tb) & (u <= ub) & (z > NEG / 2)
    o_blank = torch.exp(alpha + phi.double() + beta_next_t - z)
    o_label = torch.exp(alpha + lab.double() + beta_next_u - z)
    return torch.where(valid, o_blank, 0.0), torch.where(valid & (u < ub), o_label, 0.0)


class RNNTLossFunction(torch.autograd.Function):
    """−log Z of the RNN-T lattice per utterance, with the merged softmax gradient written in place."""

    @staticmethod
    def forward(
        ctx, logits, labels, logit_lengths, target_lengths, blank, clamp, fused, backend, flush
    ):
        lse, phi, lab = rnnt_gather(logits, labels, blank, fused)
        alpha, beta, log_z = rnnt_alpha_beta(phi, lab, logit_lengths, target_lengths, backend)
        o_blank, o_label = rnnt_arc_occupancy(
            alpha, beta, phi, lab, log_z, logit_lengths, target_lengths
        )
        ctx.save_for_backward(logits, labels, lse, o_blank, o_label)
        ctx.blank, ctx.clamp, ctx.fused, ctx.flush = blank, clamp, fused, flush
        return (-log_z).to(logits.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        logits, labels, lse, o_blank, o_label = ctx.saved_tensors
        grad = rnnt_logits_grad(
            logits,
            labels,
            lse,
            o_blank,
            o_label,
            grad_out,
            ctx.blank,
            ctx.clamp,
            ctx.fused,
            ctx.flush,
        )
        return grad, None, None, None, None, None, None, None, None


def _utterance_blocks(bsz: int, t_max: int, u1: int, v: int):
    """(b, t0, t1) blocks of one utterance's frames, each at most an eighth of all rows (so the
    block's temporaries — about 24 bytes per row — stay a small fraction of the logits even at
    V = 32), never spanning two utterances (so the scale is one scalar and the label index one
    (U+1,) row, broadcast instead of materialised)."""
    per_block = max(-(-bsz * t_max * u1 // 8), 1)
    frames = max(1, per_block // max(u1, 1))
    for b in range(bsz):
        for t0 in range(0, t_max, frames):
            yield b, t0, min(t0 + frames, t_max)


def rnnt_logits_grad(
    logits: Tensor,
    labels: Tensor,
    lse: Tensor,
    o_blank: Tensor,
    o_label: Tensor,
    grad_out: Tensor,
    blank: int,
    clamp: float,
    fused: bool,
    flush: bool | None = None,
) -> Tensor:
    """∂(Σ_b grad_out[b] · loss_b)/∂logits written into one (B, T, U+1, V) buffer, block by block.

    ``flush``: zero the gradient's subnormal entries (None: on the CPU); callers whose gradient goes
    on to half precision pass False — bf16 matrix units treat subnormals as zero already.

    Blocks are frame ranges of one utterance, so the scale is a scalar and the label index one
    (U+1,) row per block: besides the buffer, only block-sized temporaries are made (on the CPU the
    subnormal flush adds two more, |g| and a mask), and at V = 32 the peak of forward + backward
    stays near twice the logits.
    """
    bsz, t_max, u1, v = logits.shape
    dt = logits.dtype
    x = logits.detach()
    if flush is None:  # subnormals slow x86 float32 matmuls down; GPUs do not care
        flush = logits.device.type == "cpu"
    grad = torch.empty_like(logits) if fused else torch.zeros_like(x)
    scales = grad_out.to(dt).tolist()
    labels = labels.long()
    for b, t0, t1 in _utterance_blocks(bsz, t_max, u1, v):
        scale = scales[b]
        ob, ol = o_blank[b, t0:t1].to(dt), o_label[b, t0:t1].to(dt)  # (τ, U+1)
        if clamp <= 0:  # fold the per-utterance scale into the small tables: one pass less
            ob, ol = ob * scale, ol * scale
        g = grad[b, t0:t1]  # (τ, U+1, V)
        if fused:
            torch.sub(x[b, t0:t1], lse[b, t0:t1, :, None], out=g)
            g.exp_().mul_((ob + ol)[..., None])
        g[..., blank] -= ob
        index = labels[b][None, :, None].expand(t1 - t0, u1, 1)
        g.scatter_add_(2, index, -ol[..., None])
        if clamp > 0:
            g.clamp_(-clamp, clamp).mul_(scale)
        if flush:
            flush_subnormal_(g)
    return grad


def flush_subnormal_(x: Tensor) -> Tensor:
    """Set the subnormal entries of ``x`` (0 < |x| < the smallest normal number) to zero, in place.

    Softmax × occupancy products of a trained model underflow into subnormals all over the lattice
    gradient, and a matrix product that reads subnormals runs many times slower on x86 CPUs (each
    one takes a microcode assist): the joiner's backward matmuls then dominate the step. A
    subnormal float32 is below 1.2e-38, so zeroing it changes no gradient at any precision that
    matters (what a CPU in flush-to-zero mode would do anyway).
    """
    tiny = torch.finfo(x.dtype).tiny
    return x.masked_fill_(x.abs() < tiny, 0.0)


class RNNTTables(torch.autograd.Function):
    """logits (B, T, U+1, V) → blank and next-label log-probs (B, T, U+1), differentiably.

    Forward reads the logits once (``rnnt_gather``); backward writes the merged-softmax gradient into
    one buffer (``rnnt_logits_grad`` with the incoming table gradients in place of occupancies).
    """

    @staticmethod
    def forward(ctx, logits, labels, blank, fused):
        lse, phi, lab = rnnt_gather(logits, labels, blank, fused)
        ctx.save_for_backward(logits, labels, lse)
        ctx.blank, ctx.fused = blank, fused
        return phi, lab

    @staticmethod
    def backward(ctx, g_phi, g_lab):
        logits, labels, lse = ctx.saved_tensors
        ones = torch.ones(logits.shape[0], dtype=logits.dtype, device=logits.device)
        g_phi = torch.zeros_like(lse) if g_phi is None else g_phi
        g_lab = torch.zeros_like(lse) if g_lab is None else g_lab
        grad = rnnt_logits_grad(
            logits, labels, lse, -g_phi, -g_lab, ones, ctx.blank, -1.0, ctx.fused
        )
        return grad, None, None, None
