"""The CTC lattice, written once and generic over the semiring (Graves et al., ICML 2006).

States are the extended labels ``b y1 b y2 … b`` (S = 2U+1). With arc weights x_t(s) on the states
(the emission of state s at frame t, lifted into the semiring):

    α_0(s) = x_0(s) for s ∈ {0, 1}, 0̄ otherwise
    α_t(s) = (α_{t−1}(s) ⊕ α_{t−1}(s−1) ⊕ [skip(s)] α_{t−1}(s−2)) ⊗ x_t(s)
    total  = α_{T−1}(2U) ⊕ α_{T−1}(2U−1)

skip(s) holds where s is a label different from the label at s−2. Shapes: arcs (n, B, T, S) with n the
number of semiring components; frames past ``input_lengths[b]`` leave α unchanged, states past
2·target_lengths[b] are never read, so every utterance gives what it would give alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from semiasr.errors import AlignmentError
from semiasr.semiring.semirings import MaxSemiring, Semiring

__all__ = ["ctc_backtrace", "ctc_extended_labels", "ctc_feasible", "ctc_lattice", "ctc_states"]


def ctc_extended_labels(targets: Tensor, blank: int) -> tuple[Tensor, Tensor]:
    """(B, U) targets → extended labels (B, 2U+1) and the skip mask (B, 2U+1)."""
    bsz, u = targets.shape
    ext = torch.full((bsz, 2 * u + 1), blank, dtype=torch.long, device=targets.device)
    ext[:, 1::2] = targets
    skip = torch.zeros_like(ext, dtype=torch.bool)
    if u > 1:
        skip[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    return ext, skip


def ctc_feasible(targets: Tensor, input_lengths: Tensor, target_lengths: Tensor) -> Tensor:
    """(B,) bool: enough frames for every label plus one blank between each pair of repeats."""
    u = targets.shape[1]
    pos = torch.arange(u, device=targets.device)
    repeats = (targets[:, 1:] == targets[:, :-1]) & (pos[1:] < target_lengths[:, None])
    needed = target_lengths + repeats.sum(1)
    return (input_lengths >= needed) & (input_lengths > 0)


def check_ctc_lengths(
    t_max: int, u_max: int, input_lengths: Tensor, target_lengths: Tensor
) -> None:
    """Raise AlignmentError naming the utterance whose length does not fit the padded tensors."""
    for name, lengths, limit in (
        ("input_length", input_lengths, t_max),
        ("target_length", target_lengths, u_max),
    ):
        bad = ((lengths < 0) | (lengths > limit)).nonzero()
        if bad.numel():
            b = int(bad[0])
            raise AlignmentError(
                f"utterance {b}: {name} {int(lengths[b])} outside [0, {limit}] (the padded size)"
            )


def ctc_states(emissions_table: Tensor, ext: Tensor) -> Tensor:
    """Gather the (B, T, S) state emissions from (B, T, V) log-probs once; the recursion never sees V."""
    bsz, t, _ = emissions_table.shape
    return emissions_table.gather(2, ext.unsqueeze(1).expand(bsz, t, ext.shape[1]))


def _shift(x: Tensor, k: int, zero: Tensor) -> Tensor:
    """x[..., s − k] with 0̄ shifted in at the left (x: (n, B, S), zero: (n, B, k))."""
    return torch.cat([zero[..., :k], x], dim=-1)[..., : x.shape[-1]]


def ctc_lattice(
    sr: Semiring,
    arcs: Tensor,
    skip: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    backpointers: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """⊕ over all CTC paths of ⊗ over their arcs. arcs (n, B, T, S) → total (n, B).

    With ``backpointers`` (Max semiring only) also returns (B, T) best state per frame, −1 past the
    utterance's end.
    """
    n, bsz, t_max, s_max = arcs.shape
    zero = sr.zero((bsz, s_max), arcs)
    zero2 = zero[..., :2]
    start = torch.arange(s_max, device=arcs.device) < 2
    alpha = torch.where(start, arcs[:, :, 0], zero)
    bps = []
    for t in range(1, t_max):
        prev2 = torch.where(skip, _shift(alpha, 2, zero2), zero)
        cands = torch.stack([alpha, _shift(alpha, 1, zero2), prev2], dim=-1)
        if backpointers:
            assert isinstance(sr, MaxSemiring)
            val, idx = sr.argsum(cands, dim=-1)
            bps.append(idx[0])
        else:
            val = sr.sum(cands, dim=-1)
        new = sr.times(val, arcs[:, :, t])
        alpha = torch.where((t < input_lengths)[:, None], new, alpha)
    last = (2 * target_lengths).unsqueeze(0).unsqueeze(-1).expand(n, bsz, 1)
    end_blank = alpha.gather(2, last).squeeze(-1)
    end_label = alpha.gather(2, (last - 1).clamp(min=0)).squeeze(-1)
    end_label = torch.where(target_lengths > 0, end_label, zero[..., 0])
    if not backpointers:
        return sr.plus(end_blank, end_label), None
    total = torch.maximum(end_blank, end_label)
    final_state = torch.where(end_label[0] > end_blank[0], last[0, :, 0] - 1, last[0, :, 0])
    return total, ctc_backtrace(bps, final_state, input_lengths, t_max)


def ctc_backtrace(
    bps: list[Tensor], final_state: Tensor, input_lengths: Tensor, t_max: int
) -> Tensor:
    """Follow the back-pointers (shift 0, 1 or 2 per frame) from the final state; (B, T) states."""
    bsz = final_state.shape[0]
    states = torch.full((bsz, t_max), -1, dtype=torch.long, device=final_state.device)
    s = final_state.clone()
    for t in reversed(range(t_max)):
        active = t < input_lengths
        states[:, t] = torch.where(active, s, states[:, t])
        if t > 0:
            step = bps[t - 1].gather(1, s.unsqueeze(1)).squeeze(1)
            s = torch.where(active, s - step, s)
    return states
