"""The RNN-T lattice, written once and generic over the semiring (Graves, 2012).

Grid cells (t, u), 0 ≤ t < T, 0 ≤ u ≤ U. A blank arc φ(t, u) goes (t, u) → (t+1, u); a label arc
y(t, u) = log P(y_{u+1} | t, u) goes (t, u) → (t, u+1):

    α(0, 0) = 1̄
    α(t, u) = α(t−1, u) ⊗ φ(t−1, u) ⊕ α(t, u−1) ⊗ y(t, u−1)
    total   = α(T−1, U) ⊗ φ(T−1, U)

Cells on one anti-diagonal n = t + u depend only on diagonal n − 1, so the loop runs over the T + U
diagonals and computes a whole diagonal at once ("skewed" grid: D_n[u] = α(n − u, u)). Shapes:
arcs (n_comp, B, T, U+1). A cell (t, u) of utterance b only reads cells t' ≤ t, u' ≤ u, so padding
past (logit_lengths[b], target_lengths[b]) never reaches the result.
"""

from __future__ import annotations

import torch
from torch import Tensor

from semiasr.errors import AlignmentError
from semiasr.semiring.semirings import MaxSemiring, Semiring

__all__ = ["check_rnnt_lengths", "rnnt_lattice", "skew"]


def check_rnnt_lengths(
    t_max: int, u_max: int, logit_lengths: Tensor, target_lengths: Tensor
) -> None:
    """Raise AlignmentError naming the utterance whose lengths do not fit the (T, U+1) grid."""
    for name, lengths, low, high in (
        ("logit_length", logit_lengths, 1, t_max),
        ("target_length", target_lengths, 0, u_max),
    ):
        bad = ((lengths < low) | (lengths > high)).nonzero()
        if bad.numel():
            b = int(bad[0])
            raise AlignmentError(
                f"utterance {b}: {name} {int(lengths[b])} outside [{low}, {high}] (the padded size)"
            )


def skew(arcs: Tensor, dt: int, du: int, zero: float) -> Tensor:
    """(n, B, T, U1) → (n, B, N, U1), N = T + U1 − 1, entry [n, u] = arcs[n − u − dt, u − du].

    ``dt``/``du`` say which cell's arc enters (n − u, u): (1, 0) for blanks, (0, 1) for labels.
    Entries whose source cell is off the grid get ``zero``.
    """
    _n_comp, _bsz, t_max, u1 = arcs.shape
    n_diag = t_max + u1 - 1
    dev = arcs.device
    diag = torch.arange(n_diag, device=dev)[:, None]
    u = torch.arange(u1, device=dev)[None, :]
    t_src, u_src = diag - u - dt, u - du
    valid = (t_src >= 0) & (t_src < t_max) & (u_src >= 0)
    out = arcs[:, :, t_src.clamp(0, t_max - 1), u_src.clamp(min=0)]
    return torch.where(valid, out, torch.full_like(out, zero))


def rnnt_lattice(
    sr: Semiring,
    blank_arcs: Tensor,
    label_arcs: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    backpointers: bool = False,
) -> tuple[Tensor, list[Tensor] | None]:
    """⊕ over all RNN-T paths of ⊗ over their arcs; arcs (n, B, T, U+1) → total (n, B).

    With ``backpointers`` (Max semiring) also returns the per-utterance best path as a list of
    (L_b, 3) long tensors of rows (t, u, kind), kind 0 = blank at (t, u), 1 = label y_{u+1} at (t, u).
    """
    _n_comp, bsz, t_max, u1 = blank_arcs.shape
    zero_val = sr.zero((1,), blank_arcs)[0, 0].item()
    phi = skew(blank_arcs, 1, 0, zero_val)
    lab = skew(label_arcs, 0, 1, zero_val)
    zero = sr.zero((bsz, 1), blank_arcs)
    diag = sr.zero((bsz, u1), blank_arcs)
    diag[..., 0] = sr.one((bsz,), blank_arcs)
    diags, bps = [diag], []
    for n in range(1, t_max + u1 - 1):
        from_left = sr.times(diag, phi[:, :, n])
        from_below = sr.times(torch.cat([zero, diag[..., :-1]], dim=-1), lab[:, :, n])
        if backpointers:
            assert isinstance(sr, MaxSemiring)
            diag, idx = sr.argsum(torch.stack([from_left, from_below], dim=-1), dim=-1)
            bps.append(idx[0])
        else:
            diag = sr.plus(from_left, from_below)
        diags.append(diag)
    alphas = torch.stack(diags, dim=2)  # (n, B, N, U1)
    t_end, u_end = logit_lengths - 1, target_lengths
    b_idx = torch.arange(bsz, device=blank_arcs.device)
    total = sr.times(alphas[:, b_idx, t_end + u_end, u_end], blank_arcs[:, b_idx, t_end, u_end])
    if not backpointers:
        return total, None
    choices = torch.stack(bps).cpu().tolist() if bps else []
    return total, [_backtrace(choices, int(t_end[b]), int(u_end[b]), b) for b in range(bsz)]


def _backtrace(choices: list, t: int, u: int, b: int) -> Tensor:
    """Walk back from cell (t, u) (whose final blank ends the path) to (0, 0).

    choices[n − 1][b][u]: 0 if cell (n − u, u) was best reached by a blank, 1 by a label.
    """
    rows = [(t, u, 0)]
    while t + u > 0:
        if choices[t + u - 1][b][u] == 0:
            t -= 1
            rows.append((t, u, 0))
        else:
            u -= 1
            rows.append((t, u, 1))
    return torch.tensor(rows[::-1], dtype=torch.long)
