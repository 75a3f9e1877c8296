"""Numba CPU kernels for the Log-semiring forward-backward (α-β) on CTC and RNN-T lattices.

The α-β kernels only touch the small tables — CTC state emissions (B, T, 2U+1), RNN-T blank /
next-label log-probs (B, T, U+1) — never the vocabulary axis, which stays with vectorised torch ops;
they run utterances in parallel (``prange`` over the batch), accumulate in float64, and index with
int64 (numba's ``intp``), so sizes past 2³¹ elements are fine. Same recursions as ``ctc.py`` and
``rnnt.py`` (the generic versions, which the tests compare these against). The ``joint_*`` kernels
are the per-row steps of the fused joiner + RNN-T loss's CPU pass (:mod:`semiasr.semiring.joint`),
one block of lattice cells at a time, serial (torch's matrix products around them use the threads).
"""

from __future__ import annotations

import math
import types

import numba
import numpy as np
from numba import njit, prange

# numba's default thread pools (OpenMP, TBB) keep spinning after each parallel region and starve
# torch's own OpenMP threads: measured here, a Conformer transducer training step ran 10× slower once
# the parallel RNN-T kernel had run. The workqueue pool sleeps between regions. Respect a user's choice.
if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"

NEG = -1e30


@njit(inline="always", cache=True)
def _lae(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a + math.log(1.0 + math.exp(b - a))


@njit(inline="always", cache=True)
def _lae3(a: float, b: float, c: float) -> float:
    """log(eᵃ + eᵇ + eᶜ) with two exps and one log (the largest term is factored out)."""
    if a >= b and a >= c:
        return a + math.log(1.0 + math.exp(b - a) + math.exp(c - a))
    if b >= c:
        return b + math.log(1.0 + math.exp(a - b) + math.exp(c - b))
    return c + math.log(1.0 + math.exp(a - c) + math.exp(b - c))


@njit(inline="always", cache=True)
def _ctc_skip(ext, b: int, s: int) -> bool:
    """May state s be entered from s − 2? (s a label different from the label at s − 2.)"""
    return s >= 3 and s % 2 == 1 and ext[b, s] != ext[b, s - 2]


@njit(inline="always", cache=True)
def _ctc_band(t: int, t_b: int, s_b: int) -> tuple[int, int]:
    """States [lo, hi) that are both reachable at frame t and can still reach the end by T_b − 1."""
    lo = max(0, s_b - 2 * (t_b - t))
    hi = min(s_b, 2 * t + 2)
    return lo, hi


@njit(cache=True)
def _ctc_utterance(em, ext, b: int, t_b: int, s_b: int, occ) -> float:  # pragma: no cover
    """α-β of utterance b: writes its occupancies into occ (T, S) (zero-filled), returns log Z.

    Only the band of states that lie on some complete path is visited; β is kept one frame at a
    time and turned into occupancies as it goes. No occupancies when there is no path.
    """
    if t_b <= 0:
        return NEG
    alpha = np.full((t_b, s_b), NEG)
    alpha[0, 0] = em[b, 0, 0]
    if s_b > 1:
        alpha[0, 1] = em[b, 0, 1]
    for t in range(1, t_b):
        lo, hi = _ctc_band(t, t_b, s_b)
        for s in range(lo, hi):
            a0 = alpha[t - 1, s]
            a1 = alpha[t - 1, s - 1] if s >= 1 else NEG
            if _ctc_skip(ext, b, s):
                acc = _lae3(a0, a1, alpha[t - 1, s - 2])
            else:
                acc = _lae(a0, a1)
            alpha[t, s] = acc + em[b, t, s]
    z = alpha[t_b - 1, s_b - 1]
    if s_b > 1:
        z = _lae(z, alpha[t_b - 1, s_b - 2])
    if z <= NEG / 2:
        return z
    beta = np.full(s_b + 2, NEG)  # β_{t+1}(s) + em_{t+1}(s), two NEG guards at the end
    nxt = np.full(s_b + 2, NEG)
    nxt[s_b - 1] = 0.0
    if s_b > 1:
        nxt[s_b - 2] = 0.0
    for t in range(t_b - 1, -1, -1):
        lo, hi = _ctc_band(t, t_b, s_b)
        if t < t_b - 1:
            for s in range(lo, hi):
                b0 = beta[s]
                b1 = beta[s + 1]
                if s + 2 < s_b and _ctc_skip(ext, b, s + 2):
                    nxt[s] = _lae3(b0, b1, beta[s + 2])
                else:
                    nxt[s] = _lae(b0, b1)
        for s in range(lo, hi):
            occ[t, s] = math.exp(alpha[t, s] + nxt[s] - z)
            beta[s] = nxt[s] + em[b, t, s]
        for s in range(0, lo):
            beta[s] = NEG
    return z


TINY = (
    1e-250  # a scaled α below this (relative to its frame's mass) sends the utterance to log space
)


@njit(cache=True)
def _ctc_scaled_forward(em, ext, b, t_b, s_b, p, alpha, abar, norm, with_abar):  # pragma: no cover
    """The scaled α pass shared by :func:`_ctc_utterance_scaled` and :func:`_ctc_entropy_scaled`
    (t_b ≥ 1): fills p̂ = exp(em − m_t), α̂ (normalised to 1 over each frame's band), the frame masses
    ``norm`` and, ``with_abar``, ā (expected prefix score); returns log Z, or NaN where a reachable
    cell fell below ``TINY`` or a frame has no mass (the caller then uses the log-space version)."""
    log_z = 0.0
    for t in range(t_b):
        lo, hi = _ctc_band(t, t_b, s_b)
        m = NEG
        for s in range(lo, hi):
            m = max(m, em[b, t, s])
        if m <= NEG / 2:
            return np.nan  # no emission left in the band: let the log version say "no path"
        total = 0.0
        for s in range(lo, hi):
            e = em[b, t, s]
            w = math.exp(e - m)
            p[t, s] = w
            if t == 0:
                a, mix = 1.0, 0.0
            else:
                a0 = alpha[t - 1, s]
                a = a0
                mix = a0 * abar[t - 1, s] if with_abar else 0.0
                if s >= 1:
                    a1 = alpha[t - 1, s - 1]
                    a += a1
                    if with_abar:
                        mix += a1 * abar[t - 1, s - 1]
                if _ctc_skip(ext, b, s):
                    a2 = alpha[t - 1, s - 2]
                    a += a2
                    if with_abar:
                        mix += a2 * abar[t - 1, s - 2]
                if with_abar and a > 0.0:
                    mix /= a
            v = a * w
            if v < TINY and a > 0.0 and e > NEG / 2:
                return np.nan
            alpha[t, s] = v
            if with_abar:
                abar[t, s] = mix + e
            total += v
        if total <= 0.0:
            return np.nan
        inv = 1.0 / total
        for s in range(lo, hi):
            alpha[t, s] *= inv
        norm[t] = total
        log_z += m + math.log(total)
    return log_z


@njit(cache=True)
def _ctc_scaled_backward(
    em, ext, b, t_b, s_b, p, alpha, abar, norm, out, mean, entropy
):  # pragma: no cover
    """The scaled β pass after :func:`_ctc_scaled_forward`: writes the occupancy γ = α̂ β̂ into
    ``out`` (T, S), or with ``entropy`` ∂H/∂em = −γ (ā + b̄ − mean), carrying b̄ (expected suffix
    score) beside β̂. Returns False — ``out`` zeroed — where β̂ overflowed (the caller then uses the
    log-space version)."""
    bw = np.zeros(s_b + 2)  # β̂_{t+1}(s) p̂_{t+1}(s) / mass_{t+1}, two zero guards at the end
    bb = np.zeros(s_b + 2)  # em_{t+1}(s) + b̄_{t+1}(s)
    nxt = np.zeros(s_b)  # β̂_t
    bbar = np.zeros(s_b)  # b̄_t
    for s in range(max(0, s_b - 2), s_b):
        nxt[s] = 1.0
    for t in range(t_b - 1, -1, -1):
        lo, hi = _ctc_band(t, t_b, s_b)
        if t < t_b - 1:
            for s in range(lo, hi):
                acc = bw[s] + bw[s + 1]
                mix = bw[s] * bb[s] + bw[s + 1] * bb[s + 1] if entropy else 0.0
                if s + 2 < s_b and _ctc_skip(ext, b, s + 2):
                    acc += bw[s + 2]
                    if entropy:
                        mix += bw[s + 2] * bb[s + 2]
                nxt[s] = acc
                if entropy:
                    bbar[s] = mix / acc if acc > 0.0 else 0.0
        inv = 1.0 / norm[t]
        for s in range(lo, hi):
            g = alpha[t, s] * nxt[s]
            if not g < math.inf:
                for tt in range(t_b):
                    for ss in range(s_b):
                        out[tt, ss] = 0.0
                return False
            if not entropy:
                out[t, s] = g
            elif g > 0.0:
                out[t, s] = -g * (abar[t, s] + bbar[s] - mean)
            bw[s] = nxt[s] * p[t, s] * inv
            if entropy:
                bb[s] = em[b, t, s] + bbar[s]
        for s in range(0, lo):
            bw[s] = 0.0
    return True


@njit(cache=True)
def _ctc_utterance_scaled(em, ext, b: int, t_b: int, s_b: int, occ) -> float:  # pragma: no cover
    """The same α-β as :func:`_ctc_utterance` in the probability domain with per-frame scaling
    (Rabiner, 1989): one exp per lattice cell instead of about six transcendentals.

    Frame t keeps α̂_t = α_t / Π_{τ ≤ t} C_τ (summing to 1 over the band) and
    β̂_t = β_t / Π_{τ > t} C_τ, with C_τ = exp(m_τ) · (mass of frame τ before normalising),
    m_τ the largest emission in the band; log Z = Σ log C_τ (the last band holds only the two end
    states, so their α̂ sums to 1) and the occupancy is α̂ β̂. Returns NaN — and leaves ``occ`` zero —
    when a reachable cell fell below ``TINY`` (a path more than ~575 nats below its frame's mass could
    otherwise underflow to zero and be lost): the caller then runs the log-space version.
    """
    if t_b <= 0:
        return NEG
    p = np.zeros((t_b, s_b))
    alpha = np.zeros((t_b, s_b))
    norm = np.empty(t_b)
    log_z = _ctc_scaled_forward(em, ext, b, t_b, s_b, p, alpha, alpha, norm, False)
    if np.isnan(log_z):
        return log_z
    if not _ctc_scaled_backward(em, ext, b, t_b, s_b, p, alpha, alpha, norm, occ, 0.0, False):
        return np.nan
    return log_z


@njit(cache=True)
def _ctc_utterance_auto(em, ext, b: int, t_b: int, s_b: int, occ) -> float:  # pragma: no cover
    """Scaled α-β, falling back to log space for the rare utterance where that could lose a path."""
    z = _ctc_utterance_scaled(em, ext, b, t_b, s_b, occ)
    if np.isnan(z):
        return _ctc_utterance(em, ext, b, t_b, s_b, occ)
    return z


@njit(parallel=True, cache=True)
def ctc_alpha_beta(em, ext, in_len, tgt_len, occ, log_z):  # pragma: no cover - numba
    """em (B, T, S) state log-weights, ext (B, S) extended labels → occ (B, T, S), log_z (B,).

    occ must arrive zero-filled; it stays zero past each utterance's lengths, outside the band of
    states on some complete path, and for utterances without any path (log_z ≤ NEG / 2).
    """
    for b in prange(em.shape[0]):
        log_z[b] = _ctc_utterance_auto(em, ext, b, in_len[b], 2 * tgt_len[b] + 1, occ[b])


@njit(parallel=True, cache=True)
def ctc_kl(em_p, em_q, ext, in_len, tgt_len, grad, kl):  # pragma: no cover - numba
    """KL(q ‖ p) (B,) of the CTC alignment posteriors of student em_p and teacher em_q (B, T, S),
    and its gradient w.r.t. em_p, μ^p − μ^q, into grad (zero-filled). 0 where p or q has no path.

    KL = Σ μ^q (em_q − em_p) − log Z_q + log Z_p.
    """
    for b in prange(em_p.shape[0]):
        t_b = in_len[b]
        s_b = 2 * tgt_len[b] + 1
        kl[b] = 0.0
        occ_q = np.zeros((max(t_b, 1), s_b))
        z_q = _ctc_utterance_auto(em_q, ext, b, t_b, s_b, occ_q)
        z_p = _ctc_utterance_auto(em_p, ext, b, t_b, s_b, grad[b])
        if z_p <= NEG / 2 or z_q <= NEG / 2:
            for t in range(t_b):
                for s in range(s_b):
                    grad[b, t, s] = 0.0
            continue
        cross = 0.0
        for t in range(t_b):
            for s in range(s_b):
                mu = occ_q[t, s]
                if mu > 0.0:
                    cross += mu * (em_q[b, t, s] - em_p[b, t, s])
                    grad[b, t, s] -= mu
        kl[b] = cross - z_q + z_p


@njit(inline="always", cache=True)
def _rnnt_alpha(phi, lab, b: int, t_b: int, u_b: int, alpha) -> None:  # pragma: no cover - numba
    """α of utterance b into alpha (T_b, U_b + 1) (filled with NEG by the caller)."""
    alpha[0, 0] = 0.0
    for t in range(t_b):
        for u in range(u_b + 1):
            if t == 0 and u == 0:
                continue
            a = alpha[t - 1, u] + phi[b, t - 1, u] if t > 0 else NEG
            c = alpha[t, u - 1] + lab[b, t, u - 1] if u > 0 else NEG
            alpha[t, u] = _lae(a, c)


@njit(parallel=True, cache=True)
def rnnt_alpha_beta(phi, lab, in_len, tgt_len, alpha, beta, log_z):  # pragma: no cover - numba
    """phi, lab (B, T, U+1) blank / next-label log-probs → alpha, beta (B, T, U+1), log_z (B,).

    β(t, u) is the log-weight of all completions from cell (t, u), the final blank included, so
    log_z = α(0,0) + β(0,0) = β(0,0). Cells past the lengths keep NEG.
    """
    bsz = phi.shape[0]
    for b in prange(bsz):
        t_b = in_len[b]
        u_b = tgt_len[b]
        _rnnt_alpha(phi, lab, b, t_b, u_b, alpha[b])
        beta[b, t_b - 1, u_b] = phi[b, t_b - 1, u_b]
        for t in range(t_b - 1, -1, -1):
            for u in range(u_b, -1, -1):
                if t == t_b - 1 and u == u_b:
                    continue
                a = beta[b, t + 1, u] + phi[b, t, u] if t + 1 < t_b else NEG
                c = beta[b, t, u + 1] + lab[b, t, u] if u < u_b else NEG
                beta[b, t, u] = _lae(a, c)
        log_z[b] = beta[b, 0, 0]


@njit(parallel=True, cache=True)
def rnnt_occupancy(phi, lab, in_len, tgt_len, o_blank, o_label, log_z):  # pragma: no cover - numba
    """phi, lab (B, T, U+1) blank / next-label log-probs → the posterior of every blank and label
    arc, o_blank and o_label (B, T, U+1, zero-filled by the caller; written in their own dtype),
    and log_z (B,).

    α and β of one utterance at a time in float64 scratch, then
    o_φ(t, u) = exp(α(t, u) + φ(t, u) + β(t+1, u) − log Z), with β(T_b, U_b) = 0 for the final
    blank, and o_y(t, u) = exp(α(t, u) + y(t, u) + β(t, u+1) − log Z) for u < U_b — the occupancies
    of ``fast.rnnt_arc_occupancy`` without the (B, T, U+1) float64 α and β tables. An utterance
    with no path (log Z ≤ NEG / 2, or no frames) gets none.
    """
    bsz = phi.shape[0]
    for b in prange(bsz):
        t_b = in_len[b]
        u_b = tgt_len[b]
        if t_b <= 0:
            log_z[b] = NEG
            continue
        alpha = np.full((t_b, u_b + 1), NEG)
        _rnnt_alpha(phi, lab, b, t_b, u_b, alpha)
        beta = np.full((t_b + 1, u_b + 2), NEG)  # a row past the end and a column past the end
        beta[t_b, u_b] = 0.0  # past the final blank
        for t in range(t_b - 1, -1, -1):
            for u in range(u_b, -1, -1):
                a = beta[t + 1, u] + phi[b, t, u]
                c = beta[t, u + 1] + lab[b, t, u] if u < u_b else NEG
                beta[t, u] = _lae(a, c)
        z = beta[0, 0]
        log_z[b] = z
        if z <= NEG / 2:
            continue
        for t in range(t_b):
            for u in range(u_b + 1):
                o_blank[b, t, u] = math.exp(alpha[t, u] + phi[b, t, u] + beta[t + 1, u] - z)
                if u < u_b:
                    o_label[b, t, u] = math.exp(alpha[t, u] + lab[b, t, u] + beta[t, u + 1] - z)


_TANH_CLAMP = 9.0
_TANH_P = (
    0.9999999795890396,
    0.13381040880957737,
    0.0034956053944374095,
    2.060933341458389e-05,
    1.3354949565981603e-08,
)
_TANH_Q = (
    1.0,
    0.4671435651433274,
    0.025877050043085867,
    0.0003285661624091349,
    7.776688678586098e-07,
)
"""tanh(a) ≈ a · P(a²) / Q(a²) on |a| ≤ 9 (coefficients from the lowest power up), fitted by
``scripts/fit_tanh.py``: relative error at most 2.1e-8 in float64; evaluated in float64 and rounded
once, at most 0.85 float32 ulps from tanh (numpy's float32 tanh: 1.37). Past the clamp the value at
9, which rounds to ±1 in float32."""
_P0, _P1, _P2, _P3, _P4 = _TANH_P
_Q1, _Q2, _Q3, _Q4 = _TANH_Q[1:]


@njit(cache=True, error_model="numpy")
def joint_hidden(f, g, b, t0, t1, u1, out):  # pragma: no cover - numba
    """One block of the fused joiner loss: h = tanh(f[b, t] + g[b, u]) into ``out`` (rows as
    ``joint_tables``), the sum and the rational tanh of ``_TANH_P`` / ``_TANH_Q`` in float64, rounded
    once to out's dtype (float32: within 0.85 ulps of tanh; NaN stays NaN, ±inf gives ±1). Its
    division cannot be by zero (Q ≥ 1); numpy's error model drops the check for it, which otherwise
    keeps LLVM from vectorising the loop."""
    j_dim = f.shape[2]
    for t in range(t0, t1):
        for u in range(u1):
            row = (t - t0) * u1 + u
            for j in range(j_dim):
                a = np.float64(f[b, t, j]) + np.float64(g[b, u, j])
                if a > _TANH_CLAMP:
                    a = _TANH_CLAMP
                elif a < -_TANH_CLAMP:
                    a = -_TANH_CLAMP
                s = a * a
                p = (((_P4 * s + _P3) * s + _P2) * s + _P1) * s + _P0
                q = (((_Q4 * s + _Q3) * s + _Q2) * s + _Q1) * s + 1.0
                out[row, j] = a * p / q


@njit(cache=True)
def joint_tables(x, e, labels, b, t0, t1, u1, blank, phi, lab, norm):  # pragma: no cover - numba
    """One block of the fused joiner loss's forward: its logits x (rows (t, u) for t in [t0, t1),
    u < u1, row-major; shifted so that their exponentials e = exp(x) neither overflow nor vanish)
    → the normaliser S = Σ_k e_k into norm[b, t, u] and the log-probs x_blank − log S,
    x_{labels[b, u]} − log S into phi, lab. S is summed in float64."""
    v = e.shape[1]
    for t in range(t0, t1):
        for u in range(u1):
            row = (t - t0) * u1 + u
            s = 0.0
            for k in range(v):
                s += e[row, k]
            norm[b, t, u] = s
            log_s = math.log(s)
            phi[b, t, u] = max(x[row, blank] - log_s, NEG)
            lab[b, t, u] = max(x[row, labels[b, u]] - log_s, NEG)


@njit(cache=True)
def joint_active_rows(o_blank, o_label, b, t0, t1, u1, eps, rows):  # pragma: no cover - numba
    """The rows of one block of the fused joiner loss (as ``joint_tables``) whose gradient the
    backward computes: for each frame t, every cell from the first to the last u whose occupancy
    o_φ + o_y is above ``eps`` (NaN counts as above), as row numbers (t − t0)·u1 + u into ``rows``,
    in order. Returns how many. A cell left out has ∂L/∂logits of L1 norm at most 2·eps times the
    utterance's incoming gradient (its d_k = p_k (o_φ + o_y) − [k = blank] o_φ − [k = y] o_y)."""
    n = 0
    for t in range(t0, t1):
        lo = u1
        hi = -1
        for u in range(u1):
            if not (o_blank[b, t, u] + o_label[b, t, u] <= eps):
                if lo == u1:
                    lo = u
                hi = u
        base = (t - t0) * u1
        for u in range(lo, hi + 1):
            rows[n] = base + u
            n += 1
    return n


@njit(cache=True, error_model="numpy")
def joint_logits_grad(
    e, norm, o_blank, o_label, labels, b, t0, u1, rows, scale, blank, d
):  # pragma: no cover - numba
    """One block of the fused joiner loss's backward: ∂L/∂logits into d for the block's rows
    ``rows`` (numbered as ``joint_tables``; e and d hold those rows only, row i of them is
    rows[i]), d_k = e_k / S · (o_φ + o_y) − [k = blank] o_φ − [k = y_{u+1}] o_y, each occupancy
    times ``scale`` (the utterance's incoming gradient), each entry computed in float64 and rounded
    once; entries below the smallest normal number of d's dtype are set to zero (they would slow
    the matrix products that follow on x86 CPUs) by a select, which LLVM vectorises (until
    2026-11-28 a branch, which it did not, and the blank's and the label's entries were rounded
    twice)."""
    v = e.shape[1]
    tiny = np.finfo(d.dtype).tiny
    for i in range(rows.shape[0]):
        t = t0 + rows[i] // u1
        u = rows[i] % u1
        ob = o_blank[b, t, u] * scale
        ol = o_label[b, t, u] * scale
        r = (ob + ol) / norm[b, t, u]
        for k in range(v):  # a select, not a branch: vectorised
            x = e[i, k] * r
            d[i, k] = 0.0 if abs(x) < tiny else x
        # the blank's and the label's entries again, in the formula's order
        y = labels[b, u]
        x = e[i, blank] * r - ob
        if y == blank:
            x -= ol
        d[i, blank] = 0.0 if abs(x) < tiny else x
        if y != blank:
            x = e[i, y] * r - ol
            d[i, y] = 0.0 if abs(x) < tiny else x


@njit(cache=True)
def joint_hidden_grad(m, h, b, t0, u1, rows, gf, gg, need_f, need_g):  # pragma: no cover - numba
    """One block of the fused joiner loss's backward: with m = ∂L/∂logits · W and h = tanh(z) of
    the block's rows ``rows`` (as ``joint_logits_grad``: row i of m and h is rows[i]),
    ∂L/∂z = m ⊙ (1 − h²) summed over u into gf[b, t] (``need_f``) and over t into gg[b, u]
    (``need_g``), in one pass."""
    j_dim = m.shape[1]
    for i in range(rows.shape[0]):
        t = t0 + rows[i] // u1
        u = rows[i] % u1
        for j in range(j_dim):
            hv = h[i, j]
            dz = m[i, j] * (1.0 - hv * hv)
            if need_f:
                gf[b, t, j] += dz
            if need_g:
                gg[b, u, j] += dz


@njit(cache=True)
def _ctc_entropy_log(em, ext, b: int, t_b: int, s_b: int, grad) -> float:  # pragma: no cover
    """Entropy of utterance b's CTC alignment posterior and ∂H/∂em into grad (T, S), zero-filled,
    in log space (see :func:`ctc_entropy`)."""
    if t_b <= 0:
        return 0.0
    alpha = np.full((t_b, s_b), NEG)
    beta = np.full((t_b, s_b), NEG)
    abar = np.zeros((t_b, s_b))
    bbar = np.zeros((t_b, s_b))
    alpha[0, 0] = em[b, 0, 0]
    abar[0, 0] = em[b, 0, 0]
    if s_b > 1:
        alpha[0, 1] = em[b, 0, 1]
        abar[0, 1] = em[b, 0, 1]
    for t in range(1, t_b):
        lo, hi = _ctc_band(t, t_b, s_b)
        for s in range(lo, hi):
            a0 = alpha[t - 1, s]
            a1 = alpha[t - 1, s - 1] if s >= 1 else NEG
            a2 = alpha[t - 1, s - 2] if _ctc_skip(ext, b, s) else NEG
            mx = max(a0, max(a1, a2))
            w0, w1, w2 = math.exp(a0 - mx), math.exp(a1 - mx), math.exp(a2 - mx)
            total = w0 + w1 + w2
            mix = w0 * abar[t - 1, s]
            if w1 > 0.0:
                mix += w1 * abar[t - 1, s - 1]
            if w2 > 0.0:
                mix += w2 * abar[t - 1, s - 2]
            e = em[b, t, s]
            alpha[t, s] = mx + math.log(total) + e
            abar[t, s] = mix / total + e
    beta[t_b - 1, s_b - 1] = 0.0
    if s_b > 1:
        beta[t_b - 1, s_b - 2] = 0.0
    for t in range(t_b - 2, -1, -1):
        lo, hi = _ctc_band(t, t_b, s_b)
        for s in range(lo, hi):
            e0 = em[b, t + 1, s]
            c0 = beta[t + 1, s] + e0
            c1, c2, e1, e2 = NEG, NEG, 0.0, 0.0
            if s + 1 < s_b:
                e1 = em[b, t + 1, s + 1]
                c1 = beta[t + 1, s + 1] + e1
            if s + 2 < s_b and _ctc_skip(ext, b, s + 2):
                e2 = em[b, t + 1, s + 2]
                c2 = beta[t + 1, s + 2] + e2
            mx = max(c0, max(c1, c2))
            w0, w1, w2 = math.exp(c0 - mx), math.exp(c1 - mx), math.exp(c2 - mx)
            total = w0 + w1 + w2
            mix = w0 * (e0 + bbar[t + 1, s])
            if w1 > 0.0:
                mix += w1 * (e1 + bbar[t + 1, s + 1])
            if w2 > 0.0:
                mix += w2 * (e2 + bbar[t + 1, s + 2])
            beta[t, s] = mx + math.log(total)
            bbar[t, s] = mix / total
    z = alpha[t_b - 1, s_b - 1]
    if s_b > 1:
        z = _lae(z, alpha[t_b - 1, s_b - 2])
    if z <= NEG / 2:
        return 0.0
    mean = math.exp(alpha[t_b - 1, s_b - 1] - z) * abar[t_b - 1, s_b - 1]
    if s_b > 1:
        mean += math.exp(alpha[t_b - 1, s_b - 2] - z) * abar[t_b - 1, s_b - 2]
    for t in range(t_b):
        lo, hi = _ctc_band(t, t_b, s_b)
        for s in range(lo, hi):
            mu = math.exp(alpha[t, s] + beta[t, s] - z)
            if mu > 0.0:
                grad[t, s] = -mu * (abar[t, s] + bbar[t, s] - mean)
    return z - mean


@njit(cache=True)
def _ctc_entropy_scaled(em, ext, b: int, t_b: int, s_b: int, grad) -> float:  # pragma: no cover
    """:func:`_ctc_entropy_log` in the probability domain with per-frame scaling (as
    :func:`_ctc_utterance_scaled`): the mixing weights of ā and b̄ are then plain products, no exp
    per predecessor. NaN (grad left zero) where a reachable cell fell below ``TINY``."""
    if t_b <= 0:
        return 0.0
    p = np.zeros((t_b, s_b))
    alpha = np.zeros((t_b, s_b))
    abar = np.zeros((t_b, s_b))
    norm = np.empty(t_b)
    log_z = _ctc_scaled_forward(em, ext, b, t_b, s_b, p, alpha, abar, norm, True)
    if np.isnan(log_z):
        return log_z
    mean = 0.0
    for s in range(max(0, s_b - 2), s_b):
        mean += alpha[t_b - 1, s] * abar[t_b - 1, s]
    if not _ctc_scaled_backward(em, ext, b, t_b, s_b, p, alpha, abar, norm, grad, mean, True):
        return np.nan
    return log_z - mean


@njit(parallel=True, cache=True)
def ctc_entropy(em, ext, in_len, tgt_len, grad, ent):  # pragma: no cover - numba
    """Entropy H (B,) of the CTC alignment posterior and ∂H/∂em (B, T, S) (zero-filled on entry).

    Besides α and β it carries ā_t(s) = E[score of the prefix | prefix ends in (t, s)] and
    b̄_t(s) = E[score of the suffix after (t, s)], each a softmax-weighted mix of its predecessors'
    (successors'). Then H = log Z − E[s] and ∂H/∂em_t(s) = −μ_t(s) (ā_t(s) + b̄_t(s) − E[s]),
    μ the state occupancy — i.e. −Cov(1[(t, s) on path], path score).
    """
    for b in prange(em.shape[0]):
        t_b = in_len[b]
        s_b = 2 * tgt_len[b] + 1
        h = _ctc_entropy_scaled(em, ext, b, t_b, s_b, grad[b])
        if np.isnan(h):
            h = _ctc_entropy_log(em, ext, b, t_b, s_b, grad[b])
        ent[b] = h


@njit(parallel=True, cache=True)
def rnnt_entropy(phi, lab, in_len, tgt_len, g_phi, g_lab, ent):  # pragma: no cover - numba
    """Entropy H (B,) of the RNN-T alignment posterior and ∂H/∂φ, ∂H/∂y (B, T, U+1), zero-filled.

    Same method as ``ctc_entropy``: ā(t, u) is the expected prefix score of paths reaching (t, u),
    b̄(t, u) the expected score of their completions (final blank included).
    """
    bsz = phi.shape[0]
    for b in prange(bsz):
        t_b = in_len[b]
        u_b = tgt_len[b]
        alpha = np.full((t_b, u_b + 1), NEG)
        beta = np.full((t_b, u_b + 1), NEG)
        abar = np.zeros((t_b, u_b + 1))
        bbar = np.zeros((t_b, u_b + 1))
        alpha[0, 0] = 0.0
        for t in range(t_b):
            for u in range(u_b + 1):
                if t == 0 and u == 0:
                    continue
                a = alpha[t - 1, u] + phi[b, t - 1, u] if t > 0 else NEG
                c = alpha[t, u - 1] + lab[b, t, u - 1] if u > 0 else NEG
                m = _lae(a, c)
                alpha[t, u] = m
                acc = 0.0
                if t > 0:
                    acc += math.exp(a - m) * (abar[t - 1, u] + phi[b, t - 1, u])
                if u > 0:
                    acc += math.exp(c - m) * (abar[t, u - 1] + lab[b, t, u - 1])
                abar[t, u] = acc
        beta[t_b - 1, u_b] = phi[b, t_b - 1, u_b]
        bbar[t_b - 1, u_b] = phi[b, t_b - 1, u_b]
        for t in range(t_b - 1, -1, -1):
            for u in range(u_b, -1, -1):
                if t == t_b - 1 and u == u_b:
                    continue
                a = beta[t + 1, u] + phi[b, t, u] if t + 1 < t_b else NEG
                c = beta[t, u + 1] + lab[b, t, u] if u < u_b else NEG
                m = _lae(a, c)
                beta[t, u] = m
                acc = 0.0
                if t + 1 < t_b:
                    acc += math.exp(a - m) * (phi[b, t, u] + bbar[t + 1, u])
                if u < u_b:
                    acc += math.exp(c - m) * (lab[b, t, u] + bbar[t, u + 1])
                bbar[t, u] = acc
        z = beta[0, 0]
        if z <= NEG / 2:  # every path crosses a −inf arc: no distribution, H = 0, no gradient
            continue
        mean = bbar[0, 0]
        ent[b] = z - mean
        for t in range(t_b):
            for u in range(u_b + 1):
                if t + 1 < t_b:
                    o = math.exp(alpha[t, u] + phi[b, t, u] + beta[t + 1, u] - z)
                    g_phi[b, t, u] = -o * (abar[t, u] + phi[b, t, u] + bbar[t + 1, u] - mean)
                elif u == u_b:
                    o = math.exp(alpha[t, u] + phi[b, t, u] - z)
                    g_phi[b, t, u] = -o * (abar[t, u] + phi[b, t, u] - mean)
                if u < u_b:
                    o = math.exp(alpha[t, u] + lab[b, t, u] + beta[t, u + 1] - z)
                    g_lab[b, t, u] = -o * (abar[t, u] + lab[b, t, u] + bbar[t, u + 1] - mean)


PARALLEL_MIN_CELLS = 1 << 18


def _serial(kernel):
    """A serial compilation of a parallel kernel (``prange`` becomes ``range``), cached on disk under
    its own name so the two variants never share a cache entry."""
    fn = kernel.py_func
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial")
    copy.__qualname__ = fn.__qualname__ + "_serial"
    return njit(cache=True)(copy)


_SERIAL = {
    k.py_func.__name__: _serial(k)
    for k in (ctc_alpha_beta, ctc_kl, rnnt_alpha_beta, rnnt_occupancy, ctc_entropy, rnnt_entropy)
}


def pick(kernel, n_utterances: int, cells: int):
    """The parallel kernel when the batch is big enough to pay for waking the thread pool, else the
    serial compilation of the same function (small lattices also avoid two thread pools — numba's
    and torch's — fighting over few cores)."""
    if n_utterances > 1 and cells >= PARALLEL_MIN_CELLS and numba.get_num_threads() > 1:
        return kernel
    return _SERIAL[kernel.py_func.__name__]
