"""Brute-force path enumeration for tiny CTC and RNN-T lattices (the float64 ground truth)."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch


def ctc_paths(ext: list[int], t_len: int) -> list[list[int]]:
    """Every valid CTC state sequence of length t_len over the extended labels ``ext``."""
    s_len = len(ext)
    finals = {s_len - 1, s_len - 2} if s_len > 1 else {0}
    paths = []

    def step(path: list[int]) -> None:
        if len(path) == t_len:
            if path[-1] in finals:
                paths.append(list(path))
            return
        s = path[-1]
        for nxt in (s, s + 1, s + 2):
            if nxt >= s_len:
                continue
            if nxt == s + 2 and (nxt % 2 == 0 or ext[nxt] == ext[s]):
                continue
            step([*path, nxt])

    for start in (0, 1):
        if start < s_len:
            step([start])
    return paths


def rnnt_paths(t_len: int, u_len: int) -> list[list[tuple[int, int, int]]]:
    """Every RNN-T path as arcs (t, u, kind) with kind 0 = blank, 1 = label; final blank included."""
    paths = []
    n = t_len - 1 + u_len
    for label_pos in itertools.combinations(range(n), u_len):
        t = u = 0
        arcs = []
        for k in range(n):
            if k in label_pos:
                arcs.append((t, u, 1))
                u += 1
            else:
                arcs.append((t, u, 0))
                t += 1
        arcs.append((t, u, 0))
        paths.append(arcs)
    return paths


def summarise(scores_p: list[float], scores_q: list[float] | None = None) -> dict[str, float]:
    """log Z, Viterbi score, entropy and KL(q ‖ p) of explicit path scores."""
    if not scores_p:
        return {"log": -math.inf, "max": -math.inf, "entropy": 0.0, "kl": 0.0}
    lp = torch.tensor(scores_p, dtype=torch.float64)
    log_z = torch.logsumexp(lp, 0)
    post = lp - log_z
    out = {
        "log": float(log_z),
        "max": float(lp.max()),
        "entropy": float(-(post.exp() * post).sum()),
        "n_paths": len(scores_p),
    }
    if scores_q is not None:
        lq = torch.tensor(scores_q, dtype=torch.float64)
        postq = lq - torch.logsumexp(lq, 0)
        out["kl"] = float((postq.exp() * (postq - post)).sum())
    return out


def brute_ctc(log_probs, teacher, targets, t_len, u_len, blank):
    """Path summaries of one CTC utterance; log_probs (T, V) float64."""
    labels = [int(x) for x in targets[:u_len]]
    ext = [blank]
    for y in labels:
        ext += [y, blank]
    scores_p, scores_q = [], []
    for path in ctc_paths(ext, t_len):
        scores_p.append(sum(float(log_probs[t, ext[s]]) for t, s in enumerate(path)))
        if teacher is not None:
            scores_q.append(sum(float(teacher[t, ext[s]]) for t, s in enumerate(path)))
    return summarise(scores_p, scores_q if teacher is not None else None)


def brute_rnnt(log_probs, teacher, targets, t_len, u_len, blank):
    """Path summaries of one RNN-T utterance; log_probs (T, U+1, V) float64 (normalised)."""
    labels = [int(x) for x in targets[:u_len]]

    def score(lp, arcs):
        return sum(float(lp[t, u, blank if k == 0 else labels[u]]) for t, u, k in arcs)

    paths = rnnt_paths(t_len, u_len)
    scores_p = [score(log_probs, a) for a in paths]
    scores_q = [score(teacher, a) for a in paths] if teacher is not None else None
    return summarise(scores_p, scores_q)


@pytest.fixture(scope="session")
def brute():
    return SimpleNamespace(
        ctc=brute_ctc, rnnt=brute_rnnt, ctc_paths=ctc_paths, rnnt_paths=rnnt_paths
    )
