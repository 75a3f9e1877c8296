"""CTC decoding: greedy (best path) and prefix beam search (most probable labelling, approximately).

"Connectionist Temporal Classification" (Graves et al., 2006); prefix beam search as in "First-Pass
Large Vocabulary Continuous Speech Recognition using Bi-Directional Recurrent DNNs" (Hannun et al.,
2014).

Inputs: log_probs (B, T, V) (log-softmax outputs), lengths (B,). Blank is ``blank`` (0 in semiasr).

* :func:`ctc_greedy_search` — argmax per frame, merge repeats, drop blanks. Score: the best path's
  log-probability ``Σ_t max_v log p_t(v)``.
* :func:`ctc_prefix_beam_search` — keeps the ``beam`` most probable prefixes, each with the
  log-probability of all frame paths that collapse to it ending in blank (``p_b``) or in its last
  token (``p_nb``). Score: ``log(p_b + p_nb)``, the total probability of the labelling (exact when
  nothing was pruned).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from semiasr.decoding.result import Decoded

if TYPE_CHECKING:
    from semiasr.lm import ShallowFusion

__all__ = ["ctc_greedy_search", "ctc_prefix_beam_search"]

_NEG_INF = -math.inf


def ctc_greedy_search(log_probs: Tensor, lengths: Tensor, blank: int = 0) -> Decoded:
    """Best path per utterance, collapsed; times are the first frame of each emitted token."""
    best_lp, best = log_probs.max(dim=-1)  # (B, T)
    t_max = log_probs.shape[1]
    valid = torch.arange(t_max, device=lengths.device)[None, :] < lengths[:, None]
    prev = torch.nn.functional.pad(best[:, :-1], (1, 0), value=blank)
    emit = valid & (best != blank) & (best != prev)
    scores = torch.where(valid, best_lp.double(), 0.0).sum(dim=1)  # padding may hold -inf/NaN
    out = Decoded()
    for b in range(log_probs.shape[0]):
        frames = emit[b].nonzero().flatten()
        out.tokens.append(best[b, frames].tolist())
        out.times.append(frames.tolist())
        out.scores.append(float(scores[b]))
    return out


def _add(table: dict, key: tuple, which: int, value: float, times: tuple) -> None:
    """Log-add ``value`` into ``table[key][which]`` (0: ends in blank, 1: ends in a token)."""
    entry = table.get(key)
    if entry is None:
        entry = table[key] = [_NEG_INF, _NEG_INF, times, _NEG_INF]
    entry[which] = np.logaddexp(entry[which], value)
    if value > entry[3]:  # keep the times of the likeliest contribution
        entry[2], entry[3] = times, value


def _prefix_beam_one(
    lp: np.ndarray,
    beam: int,
    blank: int,
    token_prune: int | None,
    fusion: ShallowFusion | None = None,
):
    """lp (T, V) float64 → (prefix, times, log-score) of the best surviving prefix. With
    ``fusion``, extending a prefix by a token adds the LM's score for it (so a prefix's two
    log-probabilities include its LM score), and the final choice adds the end-of-sentence score."""
    beams: dict[tuple, list] = {(): [0.0, _NEG_INF, (), 0.0]}
    vocab = lp.shape[1]
    if fusion is not None:
        fusion.check(vocab, blank)
    for t in range(lp.shape[0]):
        if token_prune is None or token_prune >= vocab:
            candidates = range(vocab)
        else:
            candidates = np.argpartition(-lp[t], token_prune - 1)[:token_prune].tolist()
        nxt: dict[tuple, list] = {}
        for prefix, (p_b, p_nb, times, _) in beams.items():
            total = np.logaddexp(p_b, p_nb)
            last = prefix[-1] if prefix else None
            extra = fusion.token_scores(prefix) if fusion is not None else None
            for c in candidates:
                p = lp[t, c]
                grow = p if extra is None else p + extra[c]  # a new token: the LM has its say
                if c == blank:
                    _add(nxt, prefix, 0, total + p, times)
                elif c == last:
                    _add(nxt, prefix, 1, p_nb + p, times)  # repeat without blank: same prefix
                    _add(nxt, (*prefix, c), 1, p_b + grow, (*times, t))
                else:
                    _add(nxt, (*prefix, c), 1, total + grow, (*times, t))
        ranked = sorted(nxt.items(), key=lambda kv: -np.logaddexp(kv[1][0], kv[1][1]))
        beams = dict(ranked[:beam])

    def final(item: tuple) -> float:
        prefix, (p_b, p_nb, _, _) = item
        end = fusion.end_score(prefix) if fusion is not None else 0.0
        return float(np.logaddexp(p_b, p_nb)) + end

    best = max(beams.items(), key=final)
    return list(best[0]), list(best[1][2]), final(best)


def ctc_prefix_beam_search(
    log_probs: Tensor,
    lengths: Tensor,
    beam: int = 4,
    blank: int = 0,
    token_prune: int | None = None,
    fusion: ShallowFusion | None = None,
) -> Decoded:
    """Prefix beam search per utterance. ``token_prune`` limits each frame to its most probable
    tokens (None: all of them). Times: the frame at which each token entered the likeliest path of
    its prefix. ``fusion``: shallow fusion with a language model (:class:`~semiasr.lm.ShallowFusion`)."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if token_prune is not None and token_prune < 1:
        raise ValueError(f"token_prune must be None (all tokens) or >= 1, got {token_prune}")
    lp = log_probs.detach().double().cpu().numpy()
    out = Decoded()
    for b, n in enumerate(lengths.tolist()):
        tokens, times, score = _prefix_beam_one(lp[b, :n], beam, blank, token_prune, fusion)
        out.tokens.append(tokens)
        out.times.append(times)
        out.scores.append(score)
    return out
