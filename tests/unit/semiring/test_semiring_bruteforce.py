"""Every semiring on both lattices against explicit enumeration of all paths (float64, 1e-9)."""

from __future__ import annotations

import math

import pytest
import torch

from semiasr import functional as F
from semiasr.semiring import use_backend

TOL = 1e-9


def _ctc_batch(seed: int, blank: int):
    g = torch.Generator().manual_seed(seed)
    bsz, t_max, v, u_max = 4, 5, 4, 3
    lp = torch.randn(bsz, t_max, v, generator=g, dtype=torch.float64).log_softmax(-1)
    lq = torch.randn(bsz, t_max, v, generator=g, dtype=torch.float64).log_softmax(-1)
    symbols = [s for s in range(v) if s != blank]
    targets = torch.tensor(symbols)[torch.randint(0, v - 1, (bsz, u_max), generator=g)]
    targets[0, 1] = targets[0, 0]  # a repeat needs a blank in between
    in_len = torch.tensor([5, 4, 3, 1])
    tgt_len = torch.tensor([2, 3, 0, 1])
    return lp, lq, targets, in_len, tgt_len


def _rnnt_batch(seed: int, blank: int):
    g = torch.Generator().manual_seed(seed)
    bsz, t_max, u_max, v = 4, 4, 3, 4
    x = torch.randn(bsz, t_max, u_max + 1, v, generator=g, dtype=torch.float64)
    xq = torch.randn(bsz, t_max, u_max + 1, v, generator=g, dtype=torch.float64)
    symbols = [s for s in range(v) if s != blank % v]
    targets = torch.tensor(symbols)[torch.randint(0, v - 1, (bsz, u_max), generator=g)]
    return x, xq, targets, torch.tensor([4, 3, 1, 2]), torch.tensor([3, 0, 2, 1])


@pytest.mark.parametrize("seed,blank", [(0, 0), (1, 2), (2, 3)])
def test_ctc_generic_semirings_match_enumeration(brute, seed, blank):
    lp, lq, targets, in_len, tgt_len = _ctc_batch(seed, blank)
    got = {
        "log": F.ctc_semiring_total("log", lp, targets, in_len, tgt_len, blank),
        "max": F.ctc_semiring_total("max", lp, targets, in_len, tgt_len, blank),
        "entropy": F.ctc_semiring_total("entropy", lp, targets, in_len, tgt_len, blank),
        "kl": F.ctc_semiring_total("kl", lp, targets, in_len, tgt_len, blank, teacher=lq),
    }
    for b in range(lp.shape[0]):
        ref = brute.ctc(lp[b], lq[b], targets[b], int(in_len[b]), int(tgt_len[b]), blank)
        if ref["log"] == -math.inf:
            continue  # infeasible: covered in test_semiring_ctc
        for name, value in got.items():
            assert float(value[b]) == pytest.approx(ref[name], abs=TOL, rel=TOL), (name, b)


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("seed,blank", [(3, 0), (4, 1)])
def test_ctc_public_functions_match_enumeration(brute, backend, seed, blank):
    lp, lq, targets, in_len, tgt_len = _ctc_batch(seed, blank)
    with use_backend(backend):
        loss = F.ctc_loss(lp, targets, in_len, tgt_len, blank, reduction="none")
        ent = F.ctc_alignment_entropy(lp, targets, in_len, tgt_len, blank)
        kl = F.ctc_alignment_kl(lp, lq, targets, in_len, tgt_len, blank)
        best = F.ctc_forced_align(lp, targets, in_len, tgt_len, blank)
    for b in range(lp.shape[0]):
        ref = brute.ctc(lp[b], lq[b], targets[b], int(in_len[b]), int(tgt_len[b]), blank)
        if ref["log"] == -math.inf:
            assert loss[b] == math.inf
            continue
        assert float(loss[b]) == pytest.approx(-ref["log"], rel=TOL)
        assert float(ent[b]) == pytest.approx(ref["entropy"], abs=TOL)
        assert float(kl[b]) == pytest.approx(ref["kl"], abs=TOL)
        assert float(best.score[b]) == pytest.approx(ref["max"], rel=TOL)
        frames = best.symbols[b, : int(in_len[b])]
        rescored = lp[b, torch.arange(int(in_len[b])), frames].sum()
        assert float(rescored) == pytest.approx(ref["max"], rel=TOL)


@pytest.mark.parametrize("seed,blank", [(0, -1), (1, 0), (2, 2)])
def test_rnnt_generic_semirings_match_enumeration(brute, seed, blank):
    x, xq, targets, t_len, u_len = _rnnt_batch(seed, blank)
    got = {
        name: F.rnnt_semiring_total(name, x, targets, t_len, u_len, blank)
        for name in ("log", "max", "entropy")
    }
    got["kl"] = F.rnnt_semiring_total("kl", x, targets, t_len, u_len, blank, teacher=xq)
    lp, lq = x.log_softmax(-1), xq.log_softmax(-1)
    for b in range(x.shape[0]):
        ref = brute.rnnt(lp[b], lq[b], targets[b], int(t_len[b]), int(u_len[b]), blank % 4)
        for name, value in got.items():
            assert float(value[b]) == pytest.approx(ref[name], abs=TOL, rel=TOL), (name, b)


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("seed,blank", [(5, -1), (6, 1)])
def test_rnnt_public_functions_match_enumeration(brute, backend, seed, blank):
    x, xq, targets, t_len, u_len = _rnnt_batch(seed, blank)
    with use_backend(backend):
        loss = F.rnnt_loss(x, targets, t_len, u_len, blank, reduction="none")
        ent = F.rnnt_alignment_entropy(x, targets, t_len, u_len, blank)
        kl = F.rnnt_alignment_kl(x, xq, targets, t_len, u_len, blank)
        best = F.rnnt_forced_align(x, targets, t_len, u_len, blank)
    lp, lq = x.log_softmax(-1), xq.log_softmax(-1)
    for b in range(x.shape[0]):
        ref = brute.rnnt(lp[b], lq[b], targets[b], int(t_len[b]), int(u_len[b]), blank % 4)
        assert float(loss[b]) == pytest.approx(-ref["log"], rel=TOL)
        assert float(ent[b]) == pytest.approx(ref["entropy"], abs=TOL)
        assert float(kl[b]) == pytest.approx(ref["kl"], abs=TOL)
        assert float(best.score[b]) == pytest.approx(ref["max"], rel=TOL)
        rows = best.path[b][best.path[b, :, 0] >= 0]
        assert rows.shape[0] == int(t_len[b]) + int(u_len[b])
        rescored = lp[b, rows[:, 0], rows[:, 1], rows[:, 2]].sum()
        assert float(rescored) == pytest.approx(ref["max"], rel=TOL)
