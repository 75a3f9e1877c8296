"""Transducer decoding, batched: greedy search and modified beam search.

Both take the model's prediction network and joiner (see :mod:`semiasr.nn.predictor`,
:mod:`semiasr.nn.joiner`) and encoder frames (B, T, D) with lengths (B,); blank is ``blank`` (0).

* :func:`transducer_greedy_search` — at each frame, emit the argmax symbol until it is blank or
  ``max_symbols_per_frame`` symbols were emitted (then move on, as in icefall/ESPnet). Score: the
  sum of the log-probabilities of every decision taken (tokens and the blanks that ended each
  frame).
* :func:`transducer_beam_search` — "modified beam search" (k2/icefall; one symbol per frame, as in
  "Pruned RNN-T for fast, memory-efficient ASR training", Kuang et al., 2022): each frame, every
  hypothesis either emits blank or exactly one token, and then time advances. The ``beam`` best of
  all extensions survive; extensions with the same token sequence are merged by log-add. Score: the
  log of the summed probability of the surviving alignments of the returned token sequence.

In this one-symbol-per-frame topology, greedy search with ``max_symbols_per_frame = 1`` is beam
search with ``beam = 1``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from semiasr.decoding.result import Decoded

__all__ = ["transducer_beam_search", "transducer_greedy_search"]


def _start(predictor: nn.Module, joiner: nn.Module, n: int, blank: int, device: torch.device):
    """Prediction state after the start symbol (blank), its projected output (n, J)."""
    state = predictor.init_state(n, device)
    out, state = predictor.step(torch.full((n,), blank, dtype=torch.long, device=device), state)
    return state, joiner.project_predictor(out)


@torch.no_grad()
def transducer_greedy_search(
    predictor: nn.Module,
    joiner: nn.Module,
    frames: Tensor,
    lengths: Tensor,
    max_symbols_per_frame: int = 3,
    blank: int = 0,
) -> Decoded:
    """Batched greedy search over encoder frames (B, T, D); see the module docstring."""
    if max_symbols_per_frame < 1:
        raise ValueError(f"max_symbols_per_frame must be >= 1, got {max_symbols_per_frame}")
    b, t_max, _ = frames.shape
    enc = joiner.project_encoder(frames)  # (B, T, J)
    state, pred = _start(predictor, joiner, b, blank, frames.device)
    scores = torch.zeros(b, dtype=torch.float64, device=frames.device)
    out = Decoded(tokens=[[] for _ in range(b)], times=[[] for _ in range(b)])
    for t in range(t_max):
        active = t < lengths
        for _ in range(max_symbols_per_frame):
            if not bool(active.any()):
                break
            log_probs = joiner.join(enc[:, t], pred).float().log_softmax(dim=-1)  # (B, V)
            best_lp, best = log_probs.max(dim=-1)
            scores += torch.where(active, best_lp.double(), 0.0)
            emit = active & (best != blank)
            for i in emit.nonzero().flatten().tolist():
                out.tokens[i].append(int(best[i]))
                out.times[i].append(t)
            if bool(emit.any()):
                new_out, new_state = predictor.step(best, state)
                state = predictor.where_state(emit, new_state, state)
                pred = torch.where(emit[:, None], joiner.project_predictor(new_out), pred)
            active = emit
    out.scores = scores.tolist()
    return out


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for finite floats."""
    hi, lo = max(a, b), min(a, b)
    return hi + math.log1p(math.exp(lo - hi))


def _merge(keys, scores: list[float], parents: list[int], tokens: list[int], t: int, blank: int):
    """Merge the new hypotheses of one utterance that share a token sequence (log-add).

    Returns, per kept slot, (key, times, score, parent, token)."""
    merged: dict[tuple, list] = {}
    for score, parent, token in zip(scores, parents, tokens):
        if score == -math.inf:
            continue
        seq, times = keys[parent]
        if token != blank:
            seq, times = (*seq, token), (*times, t)
        if seq in merged:
            entry = merged[seq]
            entry[1] = _log_add(entry[1], score)
        else:
            merged[seq] = [times, score, parent, token]
    return [(seq, *entry) for seq, entry in merged.items()]


@torch.no_grad()
def transducer_beam_search(
    predictor: nn.Module,
    joiner: nn.Module,
    frames: Tensor,
    lengths: Tensor,
    beam: int = 4,
    blank: int = 0,
) -> Decoded:
    """Batched modified beam search over encoder frames (B, T, D); see the module docstring.

    Hypotheses live in (B, beam) slots; an empty slot has score −inf."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    b, t_max, _ = frames.shape
    dev = frames.device
    enc = joiner.project_encoder(frames)  # (B, T, J)
    state, pred = _start(predictor, joiner, b * beam, blank, dev)
    pred = pred.view(b, beam, -1)  # (B, K, J)
    scores = torch.full((b, beam), -math.inf, dtype=torch.float64, device=dev)
    scores[:, 0] = 0.0
    keys = [[((), ())] * beam for _ in range(b)]  # (token sequence, times) per slot
    for t in range(t_max):
        active = t < lengths  # (B,)
        if not bool(active.any()):
            break
        log_probs = joiner.join(enc[:, t, None], pred).float().log_softmax(dim=-1)  # (B, K, V)
        vocab = log_probs.shape[-1]
        cand = (scores[..., None] + log_probs.double()).view(b, -1)  # (B, K·V)
        top, idx = cand.topk(beam, dim=-1)
        parents, tokens = (idx // vocab).tolist(), (idx % vocab).tolist()
        top_list = top.tolist()
        # inactive utterances and empty slots keep their hypothesis: parent = itself, no token
        new_scores = scores.tolist()
        parent_idx = [list(range(i * beam, (i + 1) * beam)) for i in range(b)]
        new_tokens = [[blank] * beam for _ in range(b)]
        for i in active.nonzero().flatten().tolist():
            kept = _merge(keys[i], top_list[i], parents[i], tokens[i], t, blank)
            empty = beam - len(kept)
            keys[i] = [(seq, times) for seq, times, *_ in kept] + [((), ())] * empty
            new_scores[i] = [score for *_, score, _, _ in kept] + [-math.inf] * empty
            parent_idx[i][: len(kept)] = [i * beam + parent for *_, parent, _ in kept]
            new_tokens[i] = [token for *_, token in kept] + [blank] * empty
        flat_parent = torch.tensor(parent_idx, device=dev).flatten()
        flat_tokens = torch.tensor(new_tokens, device=dev).flatten()
        state = predictor.select_state(state, flat_parent)
        pred = pred.reshape(b * beam, -1)[flat_parent]
        emit = flat_tokens != blank
        if bool(emit.any()):
            new_out, new_state = predictor.step(flat_tokens, state)
            state = predictor.where_state(emit, new_state, state)
            pred = torch.where(emit[:, None], joiner.project_predictor(new_out), pred)
        pred = pred.view(b, beam, -1)
        scores = torch.tensor(new_scores, dtype=torch.float64, device=dev)
    best = scores.argmax(dim=-1).tolist()
    out = Decoded()
    for i, k in enumerate(best):
        seq, times = keys[i][k]
        out.tokens.append(list(seq))
        out.times.append(list(times))
        out.scores.append(float(scores[i, k]))
    return out
