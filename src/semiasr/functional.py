"""Public lattice functions: CTC and RNN-T losses, alignment entropy, alignment KL, forced alignment and
arc occupancies. Batch-first everywhere.

Shapes: CTC log_probs (B, T, V), targets (B, S); RNN-T logits (B, T, U+1, V), targets (B, U); lengths
(B,). Every function runs each utterance as if it were alone in the batch.

The losses follow torch.nn.functional.ctc_loss and torchaudio.functional.rnnt_loss (same arguments,
values and reductions). The alignment functions evaluate the lattices in the semirings of
``semiasr.semiring`` ("Revisiting the Entropy Semiring for Neural Speech Recognition", Chang et al.,
ICLR 2023): Log → log Z and occupancies, Max → Viterbi paths, Entropy → H of the alignment posterior,
KL → KL(teacher ‖ student) between alignment posteriors. On the CPU the fast paths use the numba α-β
kernels; elsewhere (e.g. CUDA) the same quantities come from pure torch code.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import torch
from torch import Tensor

from semiasr.errors import AlignmentError
from semiasr.semiring import fast
from semiasr.semiring.ctc import (
    check_ctc_lengths,
    ctc_extended_labels,
    ctc_feasible,
    ctc_lattice,
    ctc_states,
)
from semiasr.semiring.expect import ctc_expectation, rnnt_expectation
from semiasr.semiring.rnnt import check_rnnt_lengths, rnnt_lattice
from semiasr.semiring.semirings import (
    ENTROPY,
    KL,
    LOG,
    MAX,
    entropy_from_total,
    kl_from_total,
    neg_inf,
)

__all__ = [
    "CTCAlignment",
    "RNNTAlignment",
    "RNNTOccupancy",
    "ctc_alignment_entropy",
    "ctc_alignment_kl",
    "ctc_forced_align",
    "ctc_loss",
    "ctc_occupancy",
    "ctc_semiring_total",
    "rnnt_alignment_entropy",
    "rnnt_alignment_kl",
    "rnnt_forced_align",
    "rnnt_joiner_loss",
    "rnnt_loss",
    "rnnt_occupancy",
    "rnnt_semiring_total",
]

_REDUCTIONS = ("none", "mean", "sum")


class CTCAlignment(NamedTuple):
    """Viterbi CTC path: ``symbols`` (B, T) vocabulary id per frame (−1 past the input length),
    ``states`` (B, T) extended-label state per frame (−1 past the end), ``score`` (B,) its log-weight
    (−inf where no path exists)."""

    symbols: Tensor
    states: Tensor
    score: Tensor


class RNNTAlignment(NamedTuple):
    """Viterbi RNN-T path: ``path`` (B, T+U, 3) rows (t, u, symbol) in order — symbol is the blank
    for a step to (t+1, u) and y_{u+1} for a step to (t, u+1); padded with −1 past the T_b + U_b
    arcs of utterance b. ``score`` (B,) is the path's log-weight."""

    path: Tensor
    score: Tensor


class RNNTOccupancy(NamedTuple):
    """Posterior of every RNN-T arc: ``blank`` (B, T, U+1) and ``label`` (B, T, U+1) (the label
    arc at (t, u) emits y_{u+1}); 0 off the lattice."""

    blank: Tensor
    label: Tensor


# ----------------------------------------------------------------------------------- helpers


def _reduce(loss: Tensor, reduction: str, divide_by: Tensor | None = None) -> Tensor:
    if reduction not in _REDUCTIONS:
        raise AlignmentError(f"reduction {reduction!r} is not one of {_REDUCTIONS}")
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if divide_by is not None:
        loss = loss / divide_by.clamp(min=1).to(loss.dtype)
    return loss.mean()


def _lengths(x: Tensor, device: torch.device, name: str, bsz: int) -> Tensor:
    x = torch.as_tensor(x, device=device).long()
    if x.shape != (bsz,):
        raise AlignmentError(f"{name} has shape {tuple(x.shape)}, expected ({bsz},)")
    return x


def _blank(blank: int, v: int) -> int:
    try:
        index = operator.index(blank)
    except TypeError:
        raise AlignmentError(f"blank index must be an integer, got {blank!r}") from None
    if not -v <= index < v:
        raise AlignmentError(f"blank index {blank} outside the vocabulary of size {v}")
    return index % v


def _clean_targets(targets: Tensor, target_lengths: Tensor, v: int, fill: int) -> Tensor:
    """Padding past each length → ``fill``; a label outside [0, V) inside the length raises."""
    targets = targets.long()
    inside = torch.arange(targets.shape[1], device=targets.device) < target_lengths[:, None]
    bad = inside & ((targets < 0) | (targets >= v))
    if bad.any():
        b, u = (int(i) for i in bad.nonzero()[0])
        raise AlignmentError(
            f"utterance {b}: target {u} = {int(targets[b, u])} outside the vocabulary [0, {v})"
        )
    return torch.where(inside, targets, torch.full_like(targets, fill))


class _CTCInput(NamedTuple):
    ext: Tensor
    skip: Tensor
    input_lengths: Tensor
    target_lengths: Tensor
    feasible: Tensor


def _ctc_prepare(
    log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, blank: int
) -> _CTCInput:
    if log_probs.dim() != 3 or targets.dim() != 2:
        raise AlignmentError(
            f"expected log_probs (B, T, V) and targets (B, S), got {tuple(log_probs.shape)} "
            f"and {tuple(targets.shape)}"
        )
    bsz, t_max, v = log_probs.shape
    dev = log_probs.device
    input_lengths = _lengths(input_lengths, dev, "input_lengths", bsz)
    target_lengths = _lengths(target_lengths, dev, "target_lengths", bsz)
    check_ctc_lengths(t_max, targets.shape[1], input_lengths, target_lengths)
    blank = _blank(blank, v)
    targets = _clean_targets(targets.to(dev), target_lengths, v, blank)
    ext, skip = ctc_extended_labels(targets, blank)
    feasible = ctc_feasible(targets, input_lengths, target_lengths)
    return _CTCInput(ext, skip, input_lengths, target_lengths, feasible)


class _RNNTInput(NamedTuple):
    labels: Tensor
    blank: int
    logit_lengths: Tensor
    target_lengths: Tensor


def _rnnt_prepare(
    logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor, blank: int
) -> _RNNTInput:
    return _rnnt_prepare_shape(
        logits.shape, logits.device, targets, logit_lengths, target_lengths, blank
    )


def _rnnt_prepare_shape(
    shape: torch.Size | tuple[int, ...],
    dev: torch.device,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int,
) -> _RNNTInput:
    if len(shape) != 4 or targets.dim() != 2 or shape[2] != targets.shape[1] + 1:
        raise AlignmentError(
            f"expected logits (B, T, U+1, V) and targets (B, U), got {tuple(shape)} "
            f"and {tuple(targets.shape)}"
        )
    bsz, t_max, u1, v = shape
    logit_lengths = _lengths(logit_lengths, dev, "logit_lengths", bsz)
    target_lengths = _lengths(target_lengths, dev, "target_lengths", bsz)
    check_rnnt_lengths(t_max, u1 - 1, logit_lengths, target_lengths)
    blank = _blank(blank, v)
    targets = _clean_targets(targets.to(dev), target_lengths, v, 0)
    labels = torch.cat([targets, targets.new_zeros(bsz, 1)], dim=1)
    return _RNNTInput(labels, blank, logit_lengths, target_lengths)


def _work_dtype(x: Tensor) -> Tensor:
    """Half precision runs the lattice in float32."""
    return x.float() if torch.finfo(x.dtype).bits < 32 else x


# --------------------------------------------------------------------------------------- CTC


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """CTC negative log-likelihood, as torch.nn.functional.ctc_loss but batch-first.

    log_probs (B, T, V) log-softmax outputs; targets (B, S) padded. Utterances without any path
    (too few frames for the labels and the blanks between repeats) give inf, or 0 with
    ``zero_infinity``, and a zero gradient. 'mean' divides each loss by its target length, then
    averages over the batch. The gradient w.r.t. log_probs is −(occupancy of each (t, symbol));
    after log_softmax's backward it equals torch's gradient w.r.t. the logits.
    """
    inp = _ctc_prepare(log_probs, targets, input_lengths, target_lengths, blank)
    lp = _work_dtype(log_probs)
    keep = inp.feasible
    nll = fast.CTCLossFunction.apply(
        lp, inp.ext, inp.skip, inp.input_lengths, inp.target_lengths, keep, fast.BACKEND
    )
    bad = ~keep | (nll >= -neg_inf(nll.dtype) / 2)
    fill = 0.0 if zero_infinity else float("inf")
    empty = (inp.input_lengths == 0) & (inp.target_lengths == 0)  # the empty path: P = 1
    nll = torch.where(bad & ~empty, torch.full_like(nll, fill), nll)
    nll = torch.where(empty, torch.zeros_like(nll), nll).to(log_probs.dtype)
    return _reduce(nll, reduction, inp.target_lengths)


def _has_path(log_z: Tensor) -> Tensor:
    """(B,) bool: some alignment avoids every arc of probability 0 (log Z above the finite −∞)."""
    return log_z > fast.NEG / 2


def _ctc_emissions(log_probs: Tensor, inp: _CTCInput) -> Tensor:
    lp = _work_dtype(log_probs)
    return ctc_states(lp, inp.ext).clamp(min=neg_inf(lp.dtype))


def ctc_alignment_entropy(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
) -> Tensor:
    """(B,) entropy in nats of the posterior over CTC alignments of each transcript.

    0 ≤ H ≤ log(#alignments); 0 for utterances without any alignment. Differentiable.
    """
    inp = _ctc_prepare(log_probs, targets, input_lengths, target_lengths, blank)
    em = _ctc_emissions(log_probs, inp)
    h = ctc_expectation(em, None, inp.ext, inp.skip, inp.input_lengths, inp.target_lengths)
    return torch.where(inp.feasible, h, torch.zeros_like(h)).to(log_probs.dtype)


def ctc_alignment_kl(
    student: Tensor,
    teacher: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
) -> Tensor:
    """(B,) KL(teacher alignment posterior ‖ student alignment posterior) in nats.

    student, teacher: (B, T, V) log-probs. Differentiable w.r.t. the student (the teacher is treated
    as a constant). 0 for utterances without any alignment.
    """
    inp = _ctc_prepare(student, targets, input_lengths, target_lengths, blank)
    if teacher.shape != student.shape:
        raise AlignmentError(f"teacher {tuple(teacher.shape)} != student {tuple(student.shape)}")
    em_p = _ctc_emissions(student, inp)
    em_q = _ctc_emissions(teacher.detach(), inp)
    kl = ctc_expectation(em_p, em_q, inp.ext, inp.skip, inp.input_lengths, inp.target_lengths)
    return torch.where(inp.feasible, kl, torch.zeros_like(kl)).to(student.dtype)


def ctc_occupancy(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
) -> Tensor:
    """(B, T, 2S+1) posterior of each extended-label state b y1 b y2 … b at each frame.

    Rows sum to 1 over the states for every frame inside the input length; 0 elsewhere and for
    utterances without any path. Differentiable (the derivative of log Z w.r.t. the emissions).
    """
    inp = _ctc_prepare(log_probs, targets, input_lengths, target_lengths, blank)
    em = _ctc_emissions(log_probs, inp)
    if not em.requires_grad:
        _, occ = fast.ctc_alpha_beta(
            em, inp.ext, inp.skip, inp.input_lengths, inp.target_lengths, fast.BACKEND
        )
        return occ.to(log_probs.dtype)
    with torch.enable_grad():
        total, _ = ctc_lattice(LOG, LOG.lift(em), inp.skip, inp.input_lengths, inp.target_lengths)
        (occ,) = torch.autograd.grad(total.sum(), em, create_graph=True)
    ok = inp.feasible & _has_path(total[0])
    return (occ * ok[:, None, None]).to(log_probs.dtype)


def ctc_forced_align(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
) -> CTCAlignment:
    """The Viterbi alignment (Max semiring with back-pointers) and its log-score.

    The score is differentiable: its gradient is the indicator of the best path.
    """
    inp = _ctc_prepare(log_probs, targets, input_lengths, target_lengths, blank)
    em = _ctc_emissions(log_probs, inp)
    total, states = ctc_lattice(
        MAX, MAX.lift(em), inp.skip, inp.input_lengths, inp.target_lengths, backpointers=True
    )
    symbols = inp.ext.gather(1, states.clamp(min=0))
    symbols = torch.where(states >= 0, symbols, -1)
    ok = inp.feasible & _has_path(total[0])
    empty = (inp.input_lengths == 0) & (inp.target_lengths == 0)  # the empty path, probability 1
    score = torch.where(ok, total[0], torch.where(empty, 0.0, float("-inf")))
    states = torch.where(ok[:, None], states, -1)
    symbols = torch.where(ok[:, None], symbols, -1)
    return CTCAlignment(symbols, states, score.to(log_probs.dtype))


# ------------------------------------------------------------------------------------- RNN-T


def rnnt_loss(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    clamp: float = -1,
    reduction: str = "mean",
    fused_log_softmax: bool = True,
) -> Tensor:
    """RNN-T negative log-likelihood with the arguments and semantics of torchaudio's rnnt_loss.

    logits (B, T, U+1, V) joiner outputs (log-probs when ``fused_log_softmax`` is False); targets
    (B, U) padded. ``blank`` −1 is the last index. ``clamp`` > 0 clamps each element of the
    gradient w.r.t. the logits to [−clamp, clamp] (before the reduction's scaling). 'mean' averages
    the per-utterance losses over the batch. An utterance whose every path crosses a −inf logit gets
    inf and a zero gradient.
    """
    inp = _rnnt_prepare(logits, targets, logit_lengths, target_lengths, blank)
    x = _work_dtype(logits)
    nll = fast.RNNTLossFunction.apply(
        x,
        inp.labels,
        inp.logit_lengths,
        inp.target_lengths,
        inp.blank,
        float(clamp),
        bool(fused_log_softmax),
        fast.BACKEND,
        # the gradient goes back to half precision logits: nothing to gain from the flush
        logits.device.type == "cpu" and x is logits,
    )
    impossible = nll >= -neg_inf(nll.dtype) / 2  # every path crosses a −inf arc
    nll = torch.where(impossible, torch.full_like(nll, float("inf")), nll)
    return _reduce(nll.to(logits.dtype), reduction)


def rnnt_joiner_loss(
    enc_proj: Tensor,
    pred_proj: Tensor,
    weight: Tensor,
    bias: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    reduction: str = "mean",
) -> Tensor:
    """``rnnt_loss`` of the additive tanh joiner's logits ``W tanh(enc_proj_t + pred_proj_u) + b``,
    without ever holding them (B, T, U+1, V) or the joiner's hidden layer (B, T, U+1, J).

    enc_proj (B, T, J) and pred_proj (B, U+1, J) are the joiner's projected inputs
    (:meth:`semiasr.nn.Joiner.project_encoder` / ``project_predictor``), weight (V, J) and bias (V,)
    its output layer. Same result and gradients as ``rnnt_loss(joiner(enc, pred), ...)``, computed in
    cache-sized blocks of the lattice (:mod:`semiasr.semiring.joint`); half precision inputs run in
    float32 (autocast is switched off inside), and the loss is returned in float32 then.
    """
    from semiasr.semiring.joint import JointRNNTLossFunction

    if enc_proj.dim() != 3:
        raise AlignmentError(f"expected enc_proj (B, T, J), got {tuple(enc_proj.shape)}")
    bsz, t_max, j = enc_proj.shape
    if pred_proj.dim() != 3 or pred_proj.shape[0] != bsz or pred_proj.shape[2] != j:
        raise AlignmentError(
            f"expected enc_proj (B, T, J) and pred_proj (B, U+1, J), got {tuple(enc_proj.shape)} "
            f"and {tuple(pred_proj.shape)}"
        )
    if weight.dim() != 2 or weight.shape[1] != j or bias.shape != weight.shape[:1]:
        raise AlignmentError(
            f"expected weight (V, {j}) and bias (V,), got {tuple(weight.shape)} and "
            f"{tuple(bias.shape)}"
        )
    kinds = {_work_dtype(x).dtype for x in (enc_proj, pred_proj, weight, bias)}
    if len(kinds) > 1:
        raise AlignmentError(
            "enc_proj, pred_proj, weight and bias need one floating dtype (half precision counts "
            f"as float32), got {[str(x.dtype) for x in (enc_proj, pred_proj, weight, bias)]}"
        )
    shape = (bsz, t_max, pred_proj.shape[1], weight.shape[0])
    inp = _rnnt_prepare_shape(shape, enc_proj.device, targets, logit_lengths, target_lengths, blank)
    work = [_work_dtype(x) for x in (enc_proj, pred_proj, weight, bias)]
    with torch.autocast(enc_proj.device.type, enabled=False):
        nll = JointRNNTLossFunction.apply(
            *work, inp.labels, inp.logit_lengths, inp.target_lengths, inp.blank, fast.BACKEND
        )
    impossible = nll >= -neg_inf(nll.dtype) / 2
    nll = torch.where(impossible, torch.full_like(nll, float("inf")), nll)
    return _reduce(nll, reduction)  # float32 for half-precision inputs, like the work


def _rnnt_tables(logits: Tensor, inp: _RNNTInput, fused: bool) -> tuple[Tensor, Tensor]:
    """Differentiable blank / next-label log-probs (B, T, U+1), clamped at the finite −∞."""
    x = _work_dtype(logits)
    phi, lab = fast.RNNTTables.apply(x, inp.labels, inp.blank, fused)
    neg = neg_inf(x.dtype)
    return phi.clamp(min=neg), lab.clamp(min=neg)


def rnnt_alignment_entropy(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    fused_log_softmax: bool = True,
) -> Tensor:
    """(B,) entropy in nats of the posterior over RNN-T alignments of each transcript.

    Same inputs as ``rnnt_loss``. 0 ≤ H ≤ log C(T+U−1, U). Differentiable.
    """
    inp = _rnnt_prepare(logits, targets, logit_lengths, target_lengths, blank)
    phi, lab = _rnnt_tables(logits, inp, fused_log_softmax)
    h = rnnt_expectation(phi, lab, None, None, inp.logit_lengths, inp.target_lengths)
    return h.to(logits.dtype)


def rnnt_alignment_kl(
    student: Tensor,
    teacher: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    fused_log_softmax: bool = True,
) -> Tensor:
    """(B,) KL(teacher alignment posterior ‖ student alignment posterior) in nats.

    student, teacher: (B, T, U+1, V) joiner outputs. Differentiable w.r.t. the student.
    """
    inp = _rnnt_prepare(student, targets, logit_lengths, target_lengths, blank)
    if teacher.shape != student.shape:
        raise AlignmentError(f"teacher {tuple(teacher.shape)} != student {tuple(student.shape)}")
    phi_p, lab_p = _rnnt_tables(student, inp, fused_log_softmax)
    with torch.no_grad():
        phi_q, lab_q = _rnnt_tables(teacher, inp, fused_log_softmax)
    kl = rnnt_expectation(phi_p, lab_p, phi_q, lab_q, inp.logit_lengths, inp.target_lengths)
    return kl.to(student.dtype)


def rnnt_occupancy(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    fused_log_softmax: bool = True,
) -> RNNTOccupancy:
    """Posterior of every blank and label arc (B, T, U+1). Blanks sum to T, labels to U per utterance.

    Differentiable (the derivative of log Z w.r.t. the arc log-probs).
    """
    inp = _rnnt_prepare(logits, targets, logit_lengths, target_lengths, blank)
    phi, lab = _rnnt_tables(logits, inp, fused_log_softmax)
    if not phi.requires_grad:
        alpha, beta, log_z = fast.rnnt_alpha_beta(
            phi, lab, inp.logit_lengths, inp.target_lengths, fast.BACKEND
        )
        o_b, o_l = fast.rnnt_arc_occupancy(
            alpha, beta, phi, lab, log_z, inp.logit_lengths, inp.target_lengths
        )
        return RNNTOccupancy(o_b.to(logits.dtype), o_l.to(logits.dtype))
    with torch.enable_grad():
        total, _ = rnnt_lattice(
            LOG, LOG.lift(phi), LOG.lift(lab), inp.logit_lengths, inp.target_lengths
        )
        o_b, o_l = torch.autograd.grad(total.sum(), (phi, lab), create_graph=True)
    ok = _has_path(total[0])[:, None, None]
    return RNNTOccupancy((o_b * ok).to(logits.dtype), (o_l * ok).to(logits.dtype))


def rnnt_forced_align(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    fused_log_softmax: bool = True,
) -> RNNTAlignment:
    """The Viterbi RNN-T path (Max semiring with back-pointers) and its log-score (differentiable)."""
    inp = _rnnt_prepare(logits, targets, logit_lengths, target_lengths, blank)
    phi, lab = _rnnt_tables(logits, inp, fused_log_softmax)
    total, paths = rnnt_lattice(
        MAX, MAX.lift(phi), MAX.lift(lab), inp.logit_lengths, inp.target_lengths, True
    )
    bsz, t_max, u1, _ = logits.shape
    out = torch.full((bsz, t_max + u1 - 1, 3), -1, dtype=torch.long)
    labels = inp.labels.cpu()
    ok = _has_path(total[0])
    for b, rows in enumerate(paths):
        if not ok[b]:  # every path crosses an arc of probability 0: no alignment
            continue
        sym = torch.where(rows[:, 2] == 0, inp.blank, labels[b, rows[:, 1]])
        out[b, : rows.shape[0]] = torch.stack([rows[:, 0], rows[:, 1], sym], dim=1)
    score = torch.where(ok, total[0], float("-inf"))
    return RNNTAlignment(out.to(logits.device), score.to(logits.dtype))


# ------------------------------------------------------------------ semiring reference forms


def ctc_semiring_total(
    semiring: str,
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = 0,
    teacher: Tensor | None = None,
) -> Tensor:
    """The generic lattice in one named semiring ('log', 'max', 'entropy', 'kl'), by autograd.

    Returns log Z, the Viterbi score, H or KL per utterance. The slow, obviously-correct reference
    the fast paths are tested against.
    """
    inp = _ctc_prepare(log_probs, targets, input_lengths, target_lengths, blank)
    em = _ctc_emissions(log_probs, inp)
    sr, arcs = _lift(semiring, em, None if teacher is None else _ctc_emissions(teacher, inp))
    total, _ = ctc_lattice(sr, arcs, inp.skip, inp.input_lengths, inp.target_lengths)
    return _finish(semiring, total)


def rnnt_semiring_total(
    semiring: str,
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    teacher: Tensor | None = None,
    fused_log_softmax: bool = True,
) -> Tensor:
    """RNN-T counterpart of ``ctc_semiring_total``."""
    inp = _rnnt_prepare(logits, targets, logit_lengths, target_lengths, blank)
    phi, lab = _rnnt_tables(logits, inp, fused_log_softmax)
    if teacher is None:
        sr, blanks = _lift(semiring, phi, None)
        _, labels = _lift(semiring, lab, None)
    else:
        phi_q, lab_q = _rnnt_tables(teacher, inp, fused_log_softmax)
        sr, blanks = _lift(semiring, phi, phi_q)
        _, labels = _lift(semiring, lab, lab_q)
    total, _ = rnnt_lattice(sr, blanks, labels, inp.logit_lengths, inp.target_lengths)
    return _finish(semiring, total)


def _lift(name: str, w: Tensor, wq: Tensor | None):
    if name == "kl":
        if wq is None:
            raise AlignmentError("the 'kl' semiring needs a teacher")
        return KL, KL.lift(w, wq)
    sr = {"log": LOG, "max": MAX, "entropy": ENTROPY}.get(name)
    if sr is None:
        raise AlignmentError(f"unknown semiring {name!r}; use 'log', 'max', 'entropy' or 'kl'")
    return sr, sr.lift(w)


def _finish(name: str, total: Tensor) -> Tensor:
    if name == "entropy":
        return entropy_from_total(total)
    if name == "kl":
        return kl_from_total(total)
    return total[0]
