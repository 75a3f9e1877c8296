"""Conformer encoder: shapes, hidden states, padding independence, chunked-causal dependence."""

from __future__ import annotations

import pytest
import torch

from semiasr.nn import ConformerBlock, ConformerConfig, ConformerEncoder
from semiasr.nn.conformer import ConvModule


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight the test workers for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _encoder(**kw) -> ConformerEncoder:
    torch.manual_seed(0)
    cfg = ConformerConfig(
        feat_dim=16, d_model=32, num_layers=2, num_heads=4, conv_kernel=5, dropout=0.0, **kw
    )
    return ConformerEncoder(cfg).eval()


def test_shapes_and_hidden_states() -> None:
    enc = _encoder()
    x, lengths = torch.randn(3, 50, 16), torch.tensor([50, 33, 20])
    out = enc(x, lengths, return_hidden=True)
    assert out.frames.shape == (3, 11, 32)
    assert out.lengths.tolist() == [11, 7, 4]
    assert out.hidden is not None and len(out.hidden) == 2
    valid = torch.arange(11)[None, :] < out.lengths[:, None]
    torch.testing.assert_close(out.frames[valid], out.hidden[-1][valid])
    assert bool((out.frames[~valid] == 0).all())
    assert enc(x, lengths).hidden is None


def test_subsampling_by_eight() -> None:
    enc = _encoder(subsampling=8)
    out = enc(torch.randn(2, 50, 16), torch.tensor([50, 31]))
    assert out.frames.shape == (2, 5, 32) and out.lengths.tolist() == [5, 3]


def test_block_exposes_named_branches_and_encoder_a_module_list() -> None:
    enc = _encoder()
    assert isinstance(enc.layers, torch.nn.ModuleList)
    block = enc.layers[0]
    assert isinstance(block, ConformerBlock)
    for name in ("ff1", "attn", "conv", "ff2", "norm_out"):
        assert isinstance(getattr(block, name), torch.nn.Module)


@pytest.mark.parametrize(
    "kw",
    [{}, {"causal": True, "chunk_size": 3}, {"causal": True, "chunk_size": 2, "left_chunks": 1}],
)
def test_padded_frames_do_not_change_valid_outputs(kw: dict) -> None:
    enc = _encoder(**kw)
    lengths = torch.tensor([60, 41, 25])
    x = torch.randn(3, 60, 16)
    for b, n in enumerate(lengths.tolist()):
        x[b, n:] = 50.0  # garbage past the end
    batch = enc(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        single = enc(x[b : b + 1, :n], lengths[b : b + 1])
        m = int(single.lengths[0])
        torch.testing.assert_close(batch.frames[b, :m], single.frames[0], rtol=1e-4, atol=1e-4)


def test_causal_outputs_ignore_inputs_after_their_chunk() -> None:
    chunk = 3
    enc = _encoder(causal=True, chunk_size=chunk)
    x = torch.randn(1, 80, 16)
    lengths = torch.tensor([80])
    base = enc(x, lengths).frames[0]
    for c in range(4):
        end = (c + 1) * chunk - 1  # last subsampled frame of chunk c
        first_free = 4 * end + 7  # subsampled frame `end` reads inputs up to 4·end + 6
        y = x.clone()
        y[:, first_free:] = torch.randn_like(y[:, first_free:]) * 5
        out = enc(y, lengths).frames[0]
        torch.testing.assert_close(out[: end + 1], base[: end + 1], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(out[end + 1 :], base[end + 1 :], atol=1e-3)


def test_full_attention_looks_ahead() -> None:
    enc = _encoder()
    x = torch.randn(1, 80, 16)
    lengths = torch.tensor([80])
    y = x.clone()
    y[:, 60:] += 3.0
    assert not torch.allclose(enc(x, lengths).frames[0, :3], enc(y, lengths).frames[0, :3])


def test_gradients_reach_every_parameter() -> None:
    enc = _encoder(causal=True, chunk_size=2)
    enc.train()
    out = enc(torch.randn(2, 40, 16), torch.tensor([40, 30]))
    out.frames.pow(2).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def _conv_module_reference(m: ConvModule, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
    """ConvModule as its docstring writes it, padding the transposed (B, D, T) tensor."""
    h = torch.nn.functional.glu(m.pointwise1(m.norm(x)), dim=-1)
    h = h.masked_fill(~pad_mask[..., None], 0.0)
    dw = m.depthwise
    h = torch.nn.functional.conv1d(
        torch.nn.functional.pad(h.transpose(1, 2), m.padding), dw.weight, dw.bias, groups=dw.groups
    ).transpose(1, 2)
    return m.pointwise2(torch.nn.functional.silu(m.conv_norm(h)))


def _conv_module_runs(m: ConvModule, x: torch.Tensor, pad_mask: torch.Tensor):
    results = []
    for fn in (lambda x: m(x, pad_mask), lambda x: _conv_module_reference(m, x, pad_mask)):
        xi = x.clone().requires_grad_(True)
        y = fn(xi)
        y.square().sum().backward()
        results.append([y.detach(), xi.grad, *(p.grad.clone() for p in m.parameters())])
        m.zero_grad(set_to_none=True)
    return results


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("kernel", "causal"), [(15, False), (15, True), (4, True)])
def test_conv_module_torch_path_equals_its_formula_bit_for_bit(
    kernel: int, causal: bool, threads: int, monkeypatch
) -> None:
    """Without the numba kernels (the path of other devices and half precision), padding time in the
    (B, T, D) layout and handing conv1d a transposed view changes no bit of the output or of any
    gradient (the demo model's width, one and two threads; checked on this CPU's oneDNN kernels —
    another backend may choose other kernels)."""
    from semiasr.nn import depthwise

    monkeypatch.setattr(depthwise, "_kernels", None)
    torch.set_num_threads(threads)  # the autouse fixture restores the count
    torch.manual_seed(5)
    m = ConvModule(64, kernel=kernel, dropout=0.0, causal=causal)
    x = torch.randn(5, 37, 64)
    pad_mask = torch.arange(37)[None] < torch.tensor([37, 30, 22, 9, 1])[:, None]
    got, ref = _conv_module_runs(m, x, pad_mask)
    assert all(torch.equal(a, b) for a, b in zip(got, ref, strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("kernel", "causal"), [(15, False), (15, True), (4, True)])
def test_conv_module_equals_its_formula(kernel: int, causal: bool, dtype) -> None:
    """With the numba kernels (the CPU default) the output and every gradient equal the formula's
    to rounding: 1e-12 in float64, 1e-5 of the largest entry in float32."""
    torch.manual_seed(5)
    m = ConvModule(64, kernel=kernel, dropout=0.0, causal=causal).to(dtype)
    x = torch.randn(5, 37, 64, dtype=dtype)
    pad_mask = torch.arange(37)[None] < torch.tensor([37, 30, 22, 9, 1])[:, None]
    got, ref = _conv_module_runs(m, x, pad_mask)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=tol * float(b.abs().max()))


@pytest.mark.parametrize("causal", [False, True])
def test_conv_module_gradients_match_finite_differences(causal: bool) -> None:
    torch.manual_seed(6)
    m = ConvModule(8, kernel=5, dropout=0.0, causal=causal).double()
    x = torch.randn(2, 9, 8, dtype=torch.float64, requires_grad=True)
    pad_mask = torch.arange(9)[None] < torch.tensor([9, 6])[:, None]
    names, params = zip(*m.named_parameters(), strict=True)

    def run(x, *flat):
        return torch.func.functional_call(m, dict(zip(names, flat, strict=True)), (x, pad_mask))

    assert torch.autograd.gradcheck(run, (x, *params))


@pytest.mark.parametrize("kernels", [True, False])
def test_conv_module_mask_is_masking_first_bit_for_bit(kernels: bool, monkeypatch) -> None:
    """The convolution module hands its padding mask to the depthwise convolution (the numba
    kernels skip padded frames; the other path masks) instead of masking a copy first: the output
    and every gradient are those of masking first, bit for bit, with garbage past each length (NaN
    there would reach the weight gradients through pointwise1 either way)."""
    from semiasr.nn import depthwise

    if not kernels:
        monkeypatch.setattr(depthwise, "runs_kernels", lambda *a: False)
    torch.manual_seed(3)
    conv = ConvModule(24, 7, causal=False, dropout=0.0)
    x = torch.randn(3, 19, 24)
    mask = torch.arange(19)[None, :] < torch.tensor([19, 12, 5])[:, None]
    x[~mask] = 1e3
    gy = torch.randn(3, 19, 24)

    def run(first: bool):
        conv.zero_grad()
        xx = x.clone().requires_grad_(True)
        if first:  # the module as it was: the GLU output masked, then the convolution
            h = torch.nn.functional.glu(conv.pointwise1(conv.norm(xx)), dim=-1)
            h = conv.depthwise(h.masked_fill(~mask[..., None], 0.0))
            y = conv.pointwise2(torch.nn.functional.silu(conv.conv_norm(h)))
        else:
            y = conv(xx, mask)
        (y[mask] * gy[mask]).sum().backward()
        return [y[mask].detach(), xx.grad[mask], *(p.grad.clone() for p in conv.parameters())]

    got, want = run(False), run(True)
    assert all(bool(t.isfinite().all()) for t in want)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)
