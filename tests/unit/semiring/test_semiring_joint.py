"""The blocked joiner + RNN-T loss pass against the loss of the materialised joiner logits."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from semiasr import functional as F
from semiasr.errors import AlignmentError
from semiasr.nn import Joiner
from semiasr.semiring import fast, joint, use_backend


def _case(seed, bsz=4, t_max=9, u_max=5, v=7, j=6, blank=-1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    joiner = Joiner(5, 4, j, v).to(dtype)
    enc = torch.randn(bsz, t_max, 5, generator=g, dtype=dtype).requires_grad_(True)
    pred = torch.randn(bsz, u_max + 1, 4, generator=g, dtype=dtype).requires_grad_(True)
    symbols = torch.tensor([s for s in range(v) if s != blank % v])
    targets = symbols[torch.randint(0, v - 1, (bsz, u_max), generator=g)]
    t_len = torch.randint(1, t_max + 1, (bsz,), generator=g)
    t_len[0] = t_max
    u_len = torch.randint(0, u_max + 1, (bsz,), generator=g)
    u_len[0] = u_max
    return joiner, enc, pred, targets, t_len, u_len


def _blocked(joiner, enc, pred, targets, t_len, u_len, blank, reduction):
    return F.rnnt_joiner_loss(
        joiner.project_encoder(enc),
        joiner.project_predictor(pred),
        joiner.output.weight,
        joiner.output.bias,
        targets,
        t_len,
        u_len,
        blank,
        reduction=reduction,
    )


def _loss_and_grads(fn, joiner, enc, pred, weights):
    params = [enc, pred, *joiner.parameters()]
    loss = fn()
    grads = torch.autograd.grad((loss * weights).sum(), params)
    return [loss.detach(), *grads]


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize(
    ("seed", "blank", "rows", "keep", "sharp"),
    [(0, -1, 2048, None, 1.0), (1, 0, 7, 0, 1.0), (2, 3, 1, 5, 1.0), (3, -1, 7, 2, 2000.0)],
)
def test_joint_loss_equals_the_loss_of_the_joiner_logits(
    backend, seed, blank, rows, keep, sharp, monkeypatch
):
    """Values and the gradients of enc, pred and every joiner weight, float64, random lengths, blank
    first / last / inside the vocabulary, blocks of one frame up to whole utterances. The CPU pass
    keeps h and exp(logits) of every block (``keep`` None), of none (0) or of the first few (the
    rest computed again in the backward); ``sharp`` scales the output layer until its logits could
    overflow exp() in float64 (|x| in the thousands), so that the pass shifts each row by its maximum."""
    monkeypatch.setattr(joint, "_BLOCK_ROWS", rows)
    monkeypatch.setattr(joint, "_CPU_BLOCK_ROWS", rows)
    joiner, enc, pred, targets, t_len, u_len = _case(seed, blank=blank)
    if keep is not None:  # bytes of that many blocks of the largest size
        monkeypatch.setattr(joint, "_KEEP_BYTES", keep * rows * (6 + 7) * 8)
    with torch.no_grad():
        joiner.output.weight.mul_(sharp)
    assert joint._shift_free(joiner.output.weight, joiner.output.bias) == (sharp == 1.0)
    weights = torch.rand(len(t_len), dtype=torch.float64) + 0.5  # a distinct grad_out per utterance

    def materialised():
        return F.rnnt_loss(joiner(enc, pred), targets, t_len, u_len, blank, reduction="none")

    def blocked():
        return _blocked(joiner, enc, pred, targets, t_len, u_len, blank, "none")

    with use_backend(backend):
        ref = _loss_and_grads(materialised, joiner, enc, pred, weights)
        got = _loss_and_grads(blocked, joiner, enc, pred, weights)
    assert torch.isfinite(ref[0]).all()
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    # frames past an utterance's length get no gradient
    for b, n in enumerate(t_len.tolist()):
        assert not got[1][b, n:].any()


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_joint_loss_reductions_match_rnnt_loss(reduction):
    joiner, enc, pred, targets, t_len, u_len = _case(3)
    with torch.no_grad():
        ref = F.rnnt_loss(joiner(enc, pred), targets, t_len, u_len, reduction=reduction)
        got = _blocked(joiner, enc, pred, targets, t_len, u_len, -1, reduction)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


def test_joint_loss_in_bf16_autocast_runs_in_float32():
    """Half-precision projections are lifted to float32 inside (autocast off): the result is the
    float32 loss of the rounded inputs, not a bf16 computation, and comes back in float32."""
    joiner, enc, pred, targets, t_len, u_len = _case(4, dtype=torch.float32)
    f = joiner.project_encoder(enc).bfloat16()
    g = joiner.project_predictor(pred).bfloat16()
    w, b = joiner.output.weight, joiner.output.bias
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = F.rnnt_joiner_loss(f, g, w, b, targets, t_len, u_len, reduction="none")
    with torch.no_grad():
        logits = w @ torch.tanh(f.float()[:, :, None] + g.float()[:, None]).unsqueeze(-1)
        ref = F.rnnt_loss(logits.squeeze(-1) + b, targets, t_len, u_len, reduction="none")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=0)


def test_joint_loss_rejects_mismatched_shapes():
    joiner, enc, pred, targets, t_len, u_len = _case(5)
    f, g = joiner.project_encoder(enc), joiner.project_predictor(pred)
    w, b = joiner.output.weight, joiner.output.bias
    with pytest.raises(AlignmentError, match="pred_proj"):
        F.rnnt_joiner_loss(f, g[..., :-1], w, b, targets, t_len, u_len)
    with pytest.raises(AlignmentError, match="weight"):
        F.rnnt_joiner_loss(f, g, w[:, :-1], b, targets, t_len, u_len)
    with pytest.raises(AlignmentError, match="targets"):
        F.rnnt_joiner_loss(f, g, w, b, targets[:, :-1], t_len, u_len)


def test_blocks_cover_each_utterance_once():
    blocks = list(joint.joint_blocks([5, 3, 0], [4, 1, 2], rows=8))
    assert blocks == [(0, 0, 2, 4), (0, 2, 4, 4), (0, 4, 5, 4), (1, 0, 3, 1)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_flush_subnormal_zeroes_only_subnormals(dtype):
    tiny = torch.finfo(dtype).tiny
    x = torch.tensor([tiny, -tiny, tiny / 4, -tiny / 1024, 0.0, 1e-3, -2.0], dtype=dtype)
    assert x[2] != 0 and x[3] != 0  # really subnormal, not already zero
    out = fast.flush_subnormal_(x)
    assert out is x
    expected = torch.tensor([tiny, -tiny, 0.0, 0.0, 0.0, 1e-3, -2.0], dtype=dtype)
    assert torch.equal(x, expected)


def test_joiner_loss_benchmark_runs_and_restores_the_flush_and_pass(tmp_path):
    """benchmarks/joiner_loss.py on tiny random inputs: every method reported, the flush and the CPU
    pass restored."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parents[3] / "benchmarks" / "joiner_loss.py"
    spec = importlib.util.spec_from_file_location("joiner_loss_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "r.json"
    threads = torch.get_num_threads()
    try:
        report = bench.main(
            ["--shape", "2", "6", "3", "--vocab", "5", "--batches", "2", "--repeats", "1",
             "--threads", "1", "--json", str(out)]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert [r["method"] for r in report["rows"]] == list(bench.METHODS)
    assert all(r["ms"] > 0 and r["saved_MiB"] > 0 for r in report["rows"])
    assert json.loads(out.read_text())["rows"] == report["rows"]
    assert fast.flush_subnormal_ is bench._FLUSH and joint.flush_subnormal_ is bench._FLUSH
    assert joint._CPU_PASS  # the CPU pass switched back on


def _peaked_case():
    """A float32 lattice whose softmax is peaked like a trained joiner's: its gradient has entries
    that underflow below the smallest normal float."""
    joiner, enc, pred, targets, t_len, u_len = _case(7, bsz=3, t_max=20, u_max=8, v=30, j=16,
                                                     dtype=torch.float32)  # fmt: skip
    with torch.no_grad():
        joiner.output.weight.mul_(40.0)
    return joiner, enc, pred, targets, t_len, u_len


def _subnormal_count(x: torch.Tensor) -> int:
    tiny = torch.finfo(x.dtype).tiny
    return int(((x != 0) & (x.abs() < tiny)).sum())


def test_rnnt_loss_gradient_holds_no_subnormals(monkeypatch):
    """The logits gradient of rnnt_loss is flushed; without the flush this lattice has subnormals
    (so the check can fail)."""
    joiner, enc, pred, targets, t_len, u_len = _peaked_case()
    logits = joiner(enc, pred).detach().requires_grad_(True)

    def grad():
        logits.grad = None
        F.rnnt_loss(logits, targets, t_len, u_len, reduction="sum").backward()
        return logits.grad

    assert _subnormal_count(grad()) == 0
    monkeypatch.setattr(fast, "flush_subnormal_", lambda x: x)
    assert _subnormal_count(grad()) > 0


def test_joint_backward_flushes_before_the_matmuls(monkeypatch):
    """The torch pass hands every block's logits gradient through flush_subnormal_ before the
    output layer's products (the count of flushed subnormals is what the flush saw)."""
    joiner, enc, pred, targets, t_len, u_len = _peaked_case()
    seen = []

    def spy(x):
        seen.append(_subnormal_count(x))
        out = fast.flush_subnormal_(x)
        assert _subnormal_count(out) == 0
        return out

    monkeypatch.setattr(joint, "flush_subnormal_", spy)
    with use_backend("torch"):
        _blocked(joiner, enc, pred, targets, t_len, u_len, -1, "sum").backward()
    assert len(seen) == len(list(joint.joint_blocks(t_len.tolist(), (u_len + 1).tolist())))
    assert sum(seen) > 0


def test_cpu_pass_flushes_its_logits_gradient(monkeypatch):
    """The CPU pass's numba kernel writes each block's logits gradient with its subnormal entries
    zeroed and the others as the formula gives them, each computed in float64 and rounded once: bit
    for bit the float64 formula here, rounded and flushed; unflushed, it has subnormals on this
    lattice (so the check can fail)."""
    from semiasr.semiring import kernels

    joiner, enc, pred, targets, t_len, u_len = _peaked_case()
    real = kernels.joint_logits_grad
    unflushed = []

    def spy(e, norm, o_blank, o_label, labels, b, t0, u1, rows, scale, blank, d):
        real(e, norm, o_blank, o_label, labels, b, t0, u1, rows, scale, blank, d)
        e, d, rows = torch.from_numpy(e).double(), torch.from_numpy(d), torch.from_numpy(rows)
        tab = [torch.from_numpy(x)[b, t0:, :u1].reshape(-1, 1)[rows].double()
               for x in (norm, o_blank, o_label)]  # fmt: skip
        ob, ol = tab[1] * scale, tab[2] * scale
        ref = e * ((ob + ol) / tab[0])  # the kernel's order: r = (o_φ + o_y) / S, then e · r
        ref[:, blank] -= ob[:, 0]
        ref.scatter_add_(1, torch.from_numpy(labels)[b, rows % u1][:, None], -ol)
        ref = ref.to(d.dtype)
        unflushed.append(_subnormal_count(ref))
        assert _subnormal_count(d) == 0
        tiny = torch.finfo(d.dtype).tiny
        assert torch.equal(d, ref.masked_fill(ref.abs() < tiny, 0.0))

    monkeypatch.setattr(kernels, "joint_logits_grad", spy)
    with use_backend("numba"):
        _blocked(joiner, enc, pred, targets, t_len, u_len, -1, "sum").backward()
    assert len(unflushed) == len(list(joint.joint_blocks(t_len.tolist(), (u_len + 1).tolist())))
    assert sum(unflushed) > 0


def test_cpu_pass_float32_matches_float64_and_keeping_changes_nothing(monkeypatch):
    """In float32 the CPU pass is as close to the float64 loss of the materialised logits as float32
    allows (values and every gradient to 1e-5 of their largest entry), and keeping h and exp(logits)
    for the backward or computing them again gives the same numbers bit for bit."""
    joiner, enc, pred, targets, t_len, u_len = _case(10, bsz=5, t_max=30, u_max=12, v=20, j=16)
    weights = torch.rand(len(t_len), dtype=torch.float64) + 0.5

    def materialised():
        return F.rnnt_loss(joiner(enc, pred), targets, t_len, u_len, reduction="none")

    ref = _loss_and_grads(materialised, joiner, enc, pred, weights)
    joiner32 = joiner.float()
    enc32, pred32 = (x.detach().float().requires_grad_(True) for x in (enc, pred))

    def blocked():
        return _blocked(joiner32, enc32, pred32, targets, t_len, u_len, -1, "none")

    monkeypatch.setattr(joint, "_CPU_BLOCK_ROWS", 40)
    got = {}
    for keep in (joint._KEEP_BYTES, 3 * 40 * (16 + 20) * 4, 0):  # all, the first 3 blocks, none
        monkeypatch.setattr(joint, "_KEEP_BYTES", keep)
        with use_backend("numba"):
            got[keep] = _loss_and_grads(blocked, joiner32, enc32, pred32, weights.float())
    first, *others = got.values()
    for a, b in zip(ref, first, strict=True):
        assert b.dtype == torch.float32
        torch.testing.assert_close(b.double(), a, rtol=0, atol=1e-5 * float(a.abs().max()))
    for other in others:
        for a, b in zip(first, other, strict=True):
            assert torch.equal(a, b)


@pytest.mark.parametrize("parallel", [False, True])
def test_occupancy_kernel_matches_the_torch_tables(parallel):
    """kernels.rnnt_occupancy gives the arc occupancies and log Z of rnnt_alpha_beta +
    rnnt_arc_occupancy (torch), in float32 and float64 tables, with an utterance of no frames and
    one with no path (a −∞ label log-prob on the only way through) among them."""
    from semiasr.semiring import kernels

    g = torch.Generator().manual_seed(11)
    bsz, t_max, u1 = 5, 9, 5
    phi = torch.randn(bsz, t_max, u1, generator=g, dtype=torch.float64).sub_(2)
    lab = torch.randn(bsz, t_max, u1, generator=g, dtype=torch.float64).sub_(2)
    t_len = torch.tensor([9, 4, 0, 1, 7])
    u_len = torch.tensor([4, 2, 1, 3, 0])
    lab[3, 0, :] = fast.NEG  # one frame, three labels: every path needs lab[3, 0, u]
    with use_backend("torch"):
        alpha, beta, log_z = fast.rnnt_alpha_beta(phi, lab, t_len, u_len)
    ref_b, ref_l = fast.rnnt_arc_occupancy(alpha, beta, phi, lab, log_z, t_len, u_len)
    assert log_z[3] <= fast.NEG / 2
    kernel = kernels.rnnt_occupancy if parallel else kernels._SERIAL["rnnt_occupancy"]
    for dt in (torch.float64, torch.float32):
        ob, ol = torch.zeros_like(phi, dtype=dt), torch.zeros_like(phi, dtype=dt)
        z = torch.empty(bsz, dtype=torch.float64)
        kernel(phi.to(dt).numpy(), lab.to(dt).numpy(), t_len.numpy(), u_len.numpy(), ob.numpy(),
               ol.numpy(), z.numpy())  # fmt: skip
        tol = 1e-12 if dt == torch.float64 else 1e-6
        ok = torch.tensor([0, 1, 4])  # utterances with a path
        torch.testing.assert_close(z[ok], log_z[ok], rtol=tol, atol=tol)
        assert z[2] <= fast.NEG / 2 and z[3] <= fast.NEG / 2
        torch.testing.assert_close(ob.double(), ref_b, rtol=tol, atol=tol)
        torch.testing.assert_close(ol.double(), ref_l, rtol=tol, atol=tol)


def test_joint_backward_skips_gradients_no_input_needs():
    """A frozen joiner output layer gets no gradient, and f/g gradients are unchanged by that."""
    joiner, enc, pred, targets, t_len, u_len = _case(8)
    ref = torch.autograd.grad(
        _blocked(joiner, enc, pred, targets, t_len, u_len, -1, "sum"), [enc, pred]
    )
    joiner.output.requires_grad_(False)
    loss = _blocked(joiner, enc, pred, targets, t_len, u_len, -1, "sum")
    got = torch.autograd.grad(loss, [enc, pred])
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
    assert joiner.output.weight.grad is None


def test_joint_loss_rejects_bad_ranks_and_mixed_dtypes():
    joiner, enc, pred, targets, t_len, u_len = _case(9)
    f, g = joiner.project_encoder(enc), joiner.project_predictor(pred)
    w, b = joiner.output.weight, joiner.output.bias
    with pytest.raises(AlignmentError, match="enc_proj"):
        F.rnnt_joiner_loss(f[0], g, w, b, targets, t_len, u_len)
    with pytest.raises(AlignmentError, match="one floating dtype"):
        F.rnnt_joiner_loss(f.float(), g, w, b, targets, t_len, u_len)


def test_half_precision_logits_skip_the_flush(monkeypatch):
    """bf16 logits' gradient goes back to bf16 (whose matrix units treat subnormals as zero): the
    float32 work copy is not flushed; float32 logits are."""
    joiner, enc, pred, targets, t_len, u_len = _peaked_case()
    calls = []
    monkeypatch.setattr(fast, "flush_subnormal_", lambda x: calls.append(1) or x)
    for dtype, flushed in ((torch.bfloat16, False), (torch.float32, True)):
        calls.clear()
        logits = joiner(enc, pred).detach().to(dtype).requires_grad_(True)
        F.rnnt_loss(logits, targets, t_len, u_len, reduction="sum").backward()
        assert bool(calls) is flushed, dtype


def test_hidden_kernel_is_within_one_ulp_of_tanh():
    """kernels.joint_hidden (the CPU pass's float32 h = tanh(f + g)) on every 61st float32 in
    [1e-6, 18] of both signs, as f with g = 0 and split between f and g (laid along J): within 1
    float32 ulp of float64 tanh of the float64 sum (0.85 measured; torch's float32 add and tanh:
    1.00, numpy's float32 tanh alone: 1.37); NaN stays NaN, ±inf gives ±1, and a block's rows follow
    joint_tables' order."""
    from semiasr.semiring import kernels

    def ulps(got, exact):
        return np.abs(got.astype(np.float64) - exact) / np.spacing(np.abs(exact).astype(np.float32))

    lo, hi = np.float32(1e-6).view(np.int32), np.float32(18.0).view(np.int32)
    x = np.arange(lo, hi, 61, dtype=np.int32).view(np.float32)
    x = np.concatenate([x, -x, np.float32([0.0, 1e30, -1e30])])
    third = (x / 3).astype(np.float32)
    for f, g in ((x, np.zeros_like(x)), (third, (x - third).astype(np.float32))):
        out = np.empty((1, x.size), np.float32)
        kernels.joint_hidden(f.reshape(1, 1, -1), g.reshape(1, 1, -1), 0, 0, 1, 1, out)
        exact = np.tanh(f.astype(np.float64) + g.astype(np.float64))
        assert ulps(out[0], exact).max() <= 1.0
    # f + g summed in float64: each (t, u) cell of a block, rows t-major as joint_tables reads them
    rng = np.random.default_rng(0)
    f = rng.normal(0, 3, (2, 7, 5)).astype(np.float32)
    g = rng.normal(0, 3, (2, 4, 5)).astype(np.float32)
    out = np.empty((3 * 4, 5), np.float32)
    kernels.joint_hidden(f, g, 1, 2, 5, 4, out)
    exact = np.tanh(f[1, 2:5, None, :].astype(np.float64) + g[1, None, :4, :]).reshape(-1, 5)
    assert ulps(out, exact).max() <= 1.0
    special = np.float32([[np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0]]).reshape(1, 6, 1)
    out = np.empty((6, 1), np.float32)
    kernels.joint_hidden(special, np.zeros((1, 1, 1), np.float32), 0, 0, 6, 1, out)
    assert np.isnan(out[0, 0])
    assert out[1:, 0].tolist() == [1.0, -1.0, 1.0, -1.0, 0.0]


def test_cpu_pass_float32_hidden_is_the_kernels():
    """In float32 the CPU pass takes h from kernels.joint_hidden, once per block of its forward
    (everything kept for the backward); in float64 it keeps torch's tanh (the kernel's 2e-8
    relative error would show at float64 precision), and the torch pass, any dtype, never calls
    the kernel (it runs on any device)."""
    from semiasr.semiring import kernels

    calls = []
    real = kernels.joint_hidden

    def spy(*args):
        calls.append(1)
        real(*args)

    joiner, enc, pred, targets, t_len, u_len = _case(5)
    j32 = copy.deepcopy(joiner).float()
    e32, p32 = (x.detach().float().requires_grad_(True) for x in (enc, pred))
    blocks = joint.joint_blocks(t_len.tolist(), (u_len + 1).tolist(), joint._CPU_BLOCK_ROWS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kernels, "joint_hidden", spy)
        with use_backend("numba"):
            _blocked(joiner, enc, pred, targets, t_len, u_len, -1, "sum").backward()
            assert not calls
            _blocked(j32, e32, p32, targets, t_len, u_len, -1, "sum").backward()
            assert len(calls) == len(list(blocks))
        calls.clear()
        with use_backend("torch"):
            _blocked(j32, e32, p32, targets, t_len, u_len, -1, "sum").backward()
        assert not calls


def test_active_rows_cover_each_frames_occupied_cells():
    """kernels.joint_active_rows keeps, for each frame of the block, every cell from the first to
    the last whose occupancy o_φ + o_y is above eps (cells between them too), none of a frame
    without occupancy, and a NaN occupancy as above eps."""
    from semiasr.semiring import kernels

    u1 = 6
    o_blank = np.zeros((2, 4, u1), np.float32)
    o_label = np.zeros((2, 4, u1), np.float32)
    o_blank[1, 0] = [0, 1e-13, 0.5, 1e-13, 0.25, 0]  # frame 0: u = 2..4
    o_label[1, 0, 1] = 1e-13  # 2e-13 in all: still below
    o_blank[1, 1, 5] = 1.0  # frame 1: u = 5 only
    # frame 2: nothing above eps (no rows)
    o_label[1, 3, 0] = np.nan  # frame 3: u = 0 (NaN counts)
    o_blank[1, 3, 3] = 1e-11  # and u = 3 (above 1e-12), so u = 0..3
    rows = np.full(4 * u1, -1, np.int64)
    n = kernels.joint_active_rows(o_blank, o_label, 1, 0, 4, u1, 1e-12, rows)
    assert rows[:n].tolist() == [2, 3, 4, 11, 18, 19, 20, 21]
    # a block starting at frame 1: rows numbered from it
    n = kernels.joint_active_rows(o_blank, o_label, 1, 1, 3, u1, 1e-12, rows)
    assert rows[:n].tolist() == [5]
    # eps 0: any cell of positive occupancy (frame 0: u = 1..4)
    n = kernels.joint_active_rows(o_blank, o_label, 1, 0, 1, u1, 0.0, rows)
    assert rows[:n].tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(("rows", "keep"), [(None, None), (40, 0), (40, 3 * 40 * (16 + 30) * 4)])
def test_cpu_backward_leaves_out_unoccupied_cells_below_float32_rounding(rows, keep, monkeypatch):
    """In float32 the CPU pass's backward computes only the cells whose occupancy is above 1e-12
    (here 42% of them); every gradient stays within 1e-6 of its largest entry of the backward over
    all cells, and as close to the float64 pass as that backward is, give or take one float32
    rounding (1.2e-7 of the largest entry). A threshold of 1e-3 moves them further than 1e-6 (the
    check can fail). Also with blocks of 40 cells (frames past the first of an utterance), none
    or only the first three kept for the backward (the others computed again, then gathered)."""
    if rows is not None:
        monkeypatch.setattr(joint, "_CPU_BLOCK_ROWS", rows)
        monkeypatch.setattr(joint, "_KEEP_BYTES", keep)
    from semiasr.semiring import kernels

    joiner, enc, pred, targets, t_len, u_len = _case(12, bsz=4, t_max=60, u_max=16, v=30, j=16,
                                                     dtype=torch.float32)  # fmt: skip
    with torch.no_grad():
        joiner.output.weight.mul_(20.0)
    weights = torch.rand(len(t_len)) + 0.5
    counts = {"rows": 0, "cells": 0}
    real = kernels.joint_active_rows

    def spy(o_blank, o_label, b, t0, t1, u1, eps, rows):
        n = real(o_blank, o_label, b, t0, t1, u1, eps, rows)
        counts["rows"] += n
        counts["cells"] += (t1 - t0) * u1
        return n

    monkeypatch.setattr(kernels, "joint_active_rows", spy)

    def grads(table):
        monkeypatch.setattr(joint, "_SKIP_OCCUPANCY", table)
        with use_backend("numba"):
            return _loss_and_grads(
                lambda: _blocked(joiner, enc, pred, targets, t_len, u_len, -1, "none"),
                joiner, enc, pred, weights,
            )  # fmt: skip

    dense = grads(joint.EVERY_CELL)
    assert counts["rows"] == counts["cells"]
    counts.update(rows=0, cells=0)
    sparse = grads({torch.float32: 1e-12})
    assert counts["rows"] < 0.7 * counts["cells"]
    coarse = grads({torch.float32: 1e-3})
    monkeypatch.setattr(joint, "_SKIP_OCCUPANCY", {})
    j64 = copy.deepcopy(joiner).double()
    e64, p64 = (x.detach().double().requires_grad_(True) for x in (enc, pred))
    exact = _loss_and_grads(
        lambda: _blocked(j64, e64, p64, targets, t_len, u_len, -1, "none"), j64, e64, p64,
        weights.double(),
    )  # fmt: skip
    worst = 0.0
    for a, b, c, x in zip(dense, sparse, coarse, exact, strict=True):
        scale = float(a.abs().max())
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6 * scale)
        err_dense = float((a.double() - x).abs().max())
        assert float((b.double() - x).abs().max()) <= err_dense + 1.2e-7 * scale
        worst = max(worst, float((c - a).abs().max()) / scale)
    assert worst > 1e-6
