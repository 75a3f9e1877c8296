"""Semiring axioms on random elements (hypothesis), and the entropy / KL bounds on random lattices."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from semiasr import functional as F
from semiasr.semiring import ENTROPY, KL, LOG, MAX

SEMIRINGS = {"log": LOG, "max": MAX, "entropy": ENTROPY, "kl": KL}
NEG = -1e30

log_values = st.floats(min_value=-30.0, max_value=5.0, allow_nan=False)


def _element(sr, draw_values):
    return torch.tensor(draw_values[: sr.n], dtype=torch.float64).reshape(sr.n, 1)


def _same(x, y):
    """Equal as semiring elements: components at the finite −∞ compare as −∞, the rest to 1e-9."""
    both_neg = (x <= NEG / 2) & (y <= NEG / 2)
    ok = both_neg | torch.isclose(x, y, rtol=1e-9, atol=1e-9)
    return bool(ok.all())


elements = st.lists(log_values, min_size=4, max_size=4)


@pytest.mark.parametrize("name", sorted(SEMIRINGS))
@settings(max_examples=60, deadline=None)
@given(a=elements, b=elements, c=elements)
def test_axioms(name, a, b, c):
    sr = SEMIRINGS[name]
    x, y, z = (_element(sr, v) for v in (a, b, c))
    zero, one = sr.zero((1,), x), sr.one((1,), x)
    assert _same(sr.plus(x, y), sr.plus(y, x))
    assert _same(sr.times(x, y), sr.times(y, x))
    assert _same(sr.plus(sr.plus(x, y), z), sr.plus(x, sr.plus(y, z)))
    assert _same(sr.times(sr.times(x, y), z), sr.times(x, sr.times(y, z)))
    assert _same(sr.times(x, sr.plus(y, z)), sr.plus(sr.times(x, y), sr.times(x, z)))
    assert _same(sr.plus(x, zero), x)
    assert _same(sr.times(x, one), x)
    assert _same(sr.times(x, zero), zero)
    assert _same(sr.sum(torch.stack([x, y, z], dim=-1), dim=-1), sr.plus(sr.plus(x, y), z))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    t_len=st.integers(1, 7),
    u_len=st.integers(0, 3),
    sharp=st.floats(0.1, 8.0),
)
def test_entropy_bounds_and_kl_nonnegative(brute, seed, t_len, u_len, sharp):
    g = torch.Generator().manual_seed(seed)
    v = 4
    x = sharp * torch.randn(1, t_len, u_len + 1, v, generator=g, dtype=torch.float64)
    xq = sharp * torch.randn(1, t_len, u_len + 1, v, generator=g, dtype=torch.float64)
    targets = torch.randint(0, v - 1, (1, u_len), generator=g)
    args = (targets, [t_len], [u_len])
    n_paths = math.comb(t_len - 1 + u_len, u_len)
    h = float(F.rnnt_alignment_entropy(x, *args))
    assert -1e-9 <= h <= math.log(n_paths) + 1e-9
    assert float(F.rnnt_alignment_kl(x, xq, *args)) >= -1e-9
    assert abs(float(F.rnnt_alignment_kl(x, x, *args))) <= 1e-9
    lp = x[:, :, 0].log_softmax(-1)
    lq = xq[:, :, 0].log_softmax(-1)
    ctc_targets = torch.randint(1, v, (1, u_len), generator=g)
    feasible = F.ctc_loss(lp, ctc_targets, [t_len], [u_len], reduction="sum") < math.inf
    ref = brute.ctc(lp[0], None, ctc_targets[0], t_len, u_len, 0)
    h = float(F.ctc_alignment_entropy(lp, ctc_targets, [t_len], [u_len]))
    if feasible:
        assert -1e-9 <= h <= math.log(ref["n_paths"]) + 1e-9
        assert float(F.ctc_alignment_kl(lp, lq, ctc_targets, [t_len], [u_len])) >= -1e-9
    else:
        assert h == 0.0
    assert abs(float(F.ctc_alignment_kl(lp, lp, ctc_targets, [t_len], [u_len]))) <= 1e-9


def test_entropy_reaches_its_bounds():
    """Uniform emissions: every alignment equally likely, H = log #paths; one-hot: H = 0."""
    t_len, u_len = 6, 2
    # All logits equal: every arc weighs log(1/3) and every path has T + U arcs, so all
    # C(T−1+U, U) alignments are equally likely.
    flat = torch.zeros(1, t_len, u_len + 1, 3, dtype=torch.float64)
    h = float(F.rnnt_alignment_entropy(flat, torch.tensor([[0, 1]]), [t_len], [u_len]))
    assert h == pytest.approx(math.log(math.comb(t_len - 1 + u_len, u_len)), rel=1e-12)
    peaky = torch.full((1, 4, 3), -50.0, dtype=torch.float64)
    peaky[0, :, 0] = 0.0
    peaky[0, 1, 1] = 0.0
    peaky[0, 1, 0] = -50.0
    peaky = peaky.log_softmax(-1)
    h = float(F.ctc_alignment_entropy(peaky, torch.tensor([[1]]), [4], [1]))
    assert h == pytest.approx(0.0, abs=1e-15)
