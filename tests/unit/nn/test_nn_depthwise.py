"""The depthwise convolution over time (semiasr.nn.depthwise) against F.conv1d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from semiasr.nn import depthwise
from semiasr.nn.depthwise import DepthwiseConvTime, depthwise_conv_time


def _reference(h, weight, bias, padding):
    y = F.conv1d(F.pad(h.transpose(1, 2), padding), weight, bias, groups=weight.shape[0])
    return y.transpose(1, 2)


def _grads(fn, h, weight, bias, gy):
    inputs = [x for x in (h, weight, bias) if x is not None and x.requires_grad]
    y = fn()
    return [y.detach(), *torch.autograd.grad((y * gy).sum(), inputs)]


@pytest.mark.parametrize(
    ("taps", "padding", "t"),
    [(15, (7, 7), 40), (15, (14, 0), 40), (4, (3, 0), 9), (1, (0, 0), 5), (5, (2, 2), 3),
     (5, (1, 3), 8), (7, (0, 0), 7)],
)  # fmt: skip
@pytest.mark.parametrize("bias", [True, False])
def test_equals_conv1d_in_float64(taps, padding, t, bias):
    """Values and the gradients of h, weight and bias, float64, centred and causal padding, an even
    kernel, one tap, fewer frames than taps, uneven padding, no padding; to 1e-12."""
    g = torch.Generator().manual_seed(taps * 100 + t)
    c = 12
    h = torch.randn(3, t, c, generator=g, dtype=torch.float64).requires_grad_(True)
    w = torch.randn(c, 1, taps, generator=g, dtype=torch.float64).requires_grad_(True)
    b = torch.randn(c, generator=g, dtype=torch.float64).requires_grad_(True) if bias else None
    t_out = t + sum(padding) - taps + 1
    gy = torch.randn(3, t_out, c, generator=g, dtype=torch.float64)
    assert depthwise.runs_kernels(h, w, b)
    got = _grads(lambda: depthwise_conv_time(h, w, b, padding), h, w, b, gy)
    ref = _grads(lambda: _reference(h, w, b, padding), h, w, b, gy)
    assert got[0].shape == (3, t_out, c)
    for a, r in zip(got, ref, strict=True):
        torch.testing.assert_close(a, r, rtol=1e-12, atol=1e-12)


def test_gradcheck():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(2, 9, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 1, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: depthwise_conv_time(*a, (4, 0)), (h, w, b))


def test_float32_is_float32_rounding_of_float64():
    """float32 in, float32 out, within 1e-5 of the float64 result (strided input accepted)."""
    g = torch.Generator().manual_seed(2)
    h = torch.randn(4, 128, 50, generator=g).transpose(1, 2)  # (4, 50, 128), not contiguous
    w, b = torch.randn(128, 1, 15, generator=g), torch.randn(128, generator=g)
    y = depthwise_conv_time(h, w, b, (7, 7))
    ref = _reference(h.double(), w.double(), b.double(), (7, 7))
    assert y.dtype == torch.float32
    torch.testing.assert_close(y.double(), ref, rtol=0, atol=1e-5 * float(ref.abs().max()))


def test_frozen_weight_gets_no_gradient_and_input_grad_is_unchanged():
    g = torch.Generator().manual_seed(3)
    h = torch.randn(2, 20, 8, generator=g, requires_grad=True)
    w, b = torch.randn(8, 1, 5, generator=g), torch.randn(8, generator=g)
    gh_frozen = torch.autograd.grad(depthwise_conv_time(h, w, b, (2, 2)).sum(), h)[0]
    w.requires_grad_(True)
    gh, gw = torch.autograd.grad(depthwise_conv_time(h, w, b, (2, 2)).sum(), [h, w])
    assert torch.equal(gh, gh_frozen) and gw.shape == w.shape
    # only the weight wanted: the input needs nothing
    gw_only = torch.autograd.grad(depthwise_conv_time(h.detach(), w, b, (2, 2)).sum(), w)[0]
    assert torch.equal(gw_only, gw)


def test_autocast_and_half_precision_take_conv1d():
    h = torch.randn(2, 10, 4)
    w, b = torch.randn(4, 1, 3), torch.randn(4)
    assert depthwise.runs_kernels(h, w, b)
    assert not depthwise.runs_kernels(h.bfloat16(), w.bfloat16(), b.bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not depthwise.runs_kernels(h, w, b)
        y = depthwise_conv_time(h, w, b, (1, 1))
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), _reference(h, w, b, (1, 1)), rtol=0.05, atol=0.05)


def test_bad_shapes_are_refused():
    w = torch.randn(4, 1, 5)
    with pytest.raises(ValueError, match="depthwise weight"):
        depthwise_conv_time(torch.randn(2, 10, 3), w, None, (2, 2))
    with pytest.raises(ValueError, match="needs at least 5 frames"):
        depthwise_conv_time(torch.randn(2, 2, 4), w, None, (1, 1))


def test_module_keeps_conv1d_parameters_and_sees_time_major_tensors():
    m = DepthwiseConvTime(6, 5, (4, 0))
    assert isinstance(m, torch.nn.Conv1d) and set(m.state_dict()) == {"weight", "bias"}
    assert m.weight.shape == (6, 1, 5)
    seen = []
    m.register_forward_hook(lambda mod, args, out: seen.append((args[0].shape, out.shape)))
    y = m(torch.randn(2, 11, 6))
    assert y.shape == (2, 11, 6) and seen == [((2, 11, 6), (2, 11, 6))]
    assert "time_padding=(4, 0)" in repr(m)


def test_depthwise_benchmark_runs_and_restores_the_kernels(tmp_path):
    """benchmarks/depthwise_conv.py on tiny inputs: the three methods reported (conv1d, numba and
    the adapters' block-Toeplitz products, each checked against conv1d first), the kernels restored."""
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parents[3] / "benchmarks" / "depthwise_conv.py"
    spec = importlib.util.spec_from_file_location("depthwise_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    kernels, threads = depthwise._kernels, torch.get_num_threads()
    out = tmp_path / "r.json"
    try:
        report = bench.main(
            ["--batch", "2", "--frames", "9", "--channels", "8", "--kernel", "5", "--batches", "2",
             "--rounds", "1", "--threads", "1", "--causal", "--json", str(out)]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert [r["method"] for r in report["rows"]] == ["conv1d", "numba", "toeplitz"]
    assert all(r["ms"] > 0 for r in report["rows"]) and report["shape"]["padding"] == [4, 0]
    assert json.loads(out.read_text())["rows"] == report["rows"]
    assert depthwise._kernels is kernels is not None


@pytest.mark.parametrize(("taps", "padding"), [(31, (15, 15)), (31, (30, 0)), (5, (3, 1))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_valid_mask_is_the_masked_copy_bit_for_bit(taps, padding, dtype):
    """``valid`` (the adapters' padding mask) gives exactly what zeroing the masked frames first
    gives — values and the gradients of h, weight and bias, float32 and float64 — even with NaN in
    the masked frames, which then get a zero gradient; the other path masks the copy itself."""
    g = torch.Generator().manual_seed(taps)
    bsz, t, c = 5, 70, 16
    lens = torch.tensor([70, 41, 70, 33, 58])
    valid = torch.arange(t)[None] < lens[:, None]
    h = torch.randn(bsz, t, c, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(c, 1, taps, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(c, generator=g, dtype=dtype, requires_grad=True)
    gy = torch.randn(bsz, t + sum(padding) - taps + 1, c, generator=g, dtype=dtype)
    ref = _grads(
        lambda: depthwise_conv_time(h.masked_fill(~valid[..., None], 0.0), w, b, padding),
        h, w, b, gy,
    )  # fmt: skip
    poisoned = h.detach().masked_fill(~valid[..., None], float("nan")).requires_grad_(True)
    assert depthwise.runs_kernels(poisoned, w, b)
    got = _grads(lambda: depthwise_conv_time(poisoned, w, b, padding, valid), poisoned, w, b, gy)
    for a, r in zip(got, ref, strict=True):
        assert torch.equal(a, r)
    assert not got[1][~valid].any()
    # the F.conv1d path (autocast, GPUs) masks the copy: the same values to rounding
    lowp = _grads(
        lambda: depthwise_conv_time(poisoned.to(torch.bfloat16), w.bfloat16(), b.bfloat16(),
                                    padding, valid).float(),
        poisoned, w, b, gy.float(),
    )  # fmt: skip
    assert torch.isfinite(lowp[0]).all()
    torch.testing.assert_close(lowp[0], ref[0].float(), rtol=0.05, atol=0.3)


def test_valid_mask_of_another_shape_is_refused():
    w = torch.randn(4, 1, 3)
    with pytest.raises(ValueError, match="valid must be"):
        depthwise_conv_time(
            torch.randn(2, 10, 4), w, None, (1, 1), torch.ones(2, 9, dtype=torch.bool)
        )
