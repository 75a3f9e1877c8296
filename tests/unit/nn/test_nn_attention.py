"""Relative-position attention against a float64 loop reference; rel_shift; masks."""

from __future__ import annotations

import math

import pytest
import torch

from semiasr.nn import (
    RelPositionalEncoding,
    RelPositionMultiHeadAttention,
    chunk_attention_mask,
    padding_mask,
    rel_shift,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and do not fight the test workers for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_rel_shift_picks_the_relative_position_of_each_key() -> None:
    t = 5
    x = torch.randn(2, 3, t, 2 * t - 1)
    y = rel_shift(x)
    for i in range(t):
        for j in range(t):
            torch.testing.assert_close(y[..., i, j], x[..., i, t - 1 - i + j])


def _sinusoid(r: float, d: int) -> torch.Tensor:
    k = torch.arange(0, d, 2, dtype=torch.float64)
    angle = r * torch.exp(k * (-math.log(10000.0) / d))
    return torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(d)


def _reference(att: RelPositionMultiHeadAttention, x: torch.Tensor, mask: torch.Tensor):
    """Loop over queries and keys with score (q_i + u)·k_j + (q_i + v)·W_pos p(i - j)."""
    b, t, d = x.shape
    h, dk = att.num_heads, att.d_k

    def lin(layer, z):
        w = layer.weight.double()
        return z @ w.T + (layer.bias.double() if layer.bias is not None else 0)

    q, k, v = (
        lin(layer, x).view(b, t, h, dk) for layer in (att.linear_q, att.linear_k, att.linear_v)
    )
    u, vb = att.pos_bias_u.double(), att.pos_bias_v.double()
    out = torch.zeros(b, t, h, dk, dtype=torch.float64)
    for bi in range(b):
        for i in range(t):
            scores = torch.full((h, t), -math.inf, dtype=torch.float64)
            for j in range(t):
                if mask[bi, i, j]:
                    p = lin(att.linear_pos, _sinusoid(i - j, d)).view(h, dk)
                    s = ((q[bi, i] + u) * k[bi, j]).sum(-1) + ((q[bi, i] + vb) * p).sum(-1)
                    scores[:, j] = s / math.sqrt(dk)
            w = torch.softmax(scores, dim=-1)  # (h, t)
            out[bi, i] = torch.einsum("hj,jhd->hd", w, v[bi])
    return lin(att.linear_out, out.reshape(b, t, d))


def test_attention_matches_loop_reference_with_masks() -> None:
    torch.manual_seed(0)
    d, t = 8, 6
    att = RelPositionMultiHeadAttention(d, 2).eval()
    x = torch.randn(2, t, d)
    pad = padding_mask(torch.tensor([6, 4]), t)
    mask = pad[:, None, :] & chunk_attention_mask(t, 2)[None]
    pos = RelPositionalEncoding(d)(t, x.device, x.dtype)
    y = att(x, pos, mask)
    ref = _reference(att, x.double(), mask)
    torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-5)


def test_chunk_mask_definition() -> None:
    for chunk, left in [(1, -1), (3, -1), (2, 0), (2, 1), (4, 2)]:
        m = chunk_attention_mask(11, chunk, left)
        for i in range(11):
            for j in range(11):
                ci, cj = i // chunk, j // chunk
                expect = cj <= ci and (left < 0 or cj >= ci - left)
                assert bool(m[i, j]) == expect
    assert torch.equal(chunk_attention_mask(5, 1), torch.ones(5, 5, dtype=bool).tril())


def test_relative_positional_encoding_is_exact_in_float64_and_unchanged_in_float32() -> None:
    """sin/cos of distance · 10000^(−2i/D), built directly in float64: a float64 model gets it to
    rounding (its angles reach T − 1, where float32's sine errs by ~1e-7 and CPU and CUDA differ),
    a float32 model the float32 values it always had."""
    t, d = 300, 16
    dist = torch.arange(t - 1, -t, -1, dtype=torch.float64)[:, None]
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    want = torch.stack([(dist * freq).sin(), (dist * freq).cos()], -1).reshape(1, -1, d)
    enc = RelPositionalEncoding(d)
    got64 = enc(t, torch.device("cpu"), torch.float64)
    assert got64.dtype == torch.float64
    torch.testing.assert_close(got64, want, rtol=0, atol=1e-12)
    got32 = enc(t, torch.device("cpu"), torch.float32)
    angle = torch.arange(t - 1, -t, -1, dtype=torch.float32)[:, None] * torch.exp(
        torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d)
    )
    assert torch.equal(got32, torch.stack([angle.sin(), angle.cos()], -1).reshape(1, -1, d))


def test_attention_gradients_match_finite_differences_with_masks() -> None:
    """The scores are built in place (content + position, / sqrt(d_k), masking): the gradients of
    the input, the positional encodings and every parameter stay those of the formula (float64
    finite differences), with a padded key and a chunk mask."""
    torch.manual_seed(0)
    d, t = 8, 5
    att = RelPositionMultiHeadAttention(d, 2).double()
    with torch.no_grad():  # non-zero biases, so each term of the score is exercised
        att.pos_bias_u.normal_()
        att.pos_bias_v.normal_()
    x = torch.randn(2, t, d, dtype=torch.float64, requires_grad=True)
    pos = RelPositionalEncoding(d)(t, x.device, x.dtype).requires_grad_(True)
    mask = padding_mask(torch.tensor([5, 3]), t)[:, None, :] & chunk_attention_mask(t, 2)[None]
    names, params = zip(*att.named_parameters(), strict=True)

    def run(x, pos, *flat):
        return torch.func.functional_call(att, dict(zip(names, flat, strict=True)), (x, pos, mask))

    assert torch.autograd.gradcheck(run, (x, pos, *params))


@pytest.mark.parametrize("autocast", [False, True])
def test_in_place_scores_equal_the_out_of_place_formula_bit_for_bit(autocast: bool) -> None:
    """Building the scores in place changes no bit of the output or of any gradient against
    (content + position) / sqrt(d_k), masked out of place — in float32 and under bf16 autocast."""
    torch.manual_seed(3)
    d, t = 24, 7  # d_k = 6: dividing by sqrt(6) and multiplying by its reciprocal round apart
    att = RelPositionMultiHeadAttention(d, 4)
    with torch.no_grad():
        att.pos_bias_u.normal_()
        att.pos_bias_v.normal_()
    x = torch.randn(3, t, d)
    pos = RelPositionalEncoding(d)(t, x.device, x.dtype)
    mask = padding_mask(torch.tensor([7, 5, 2]), t)[:, None, :].expand(3, t, t)

    def out_of_place(x):
        q = att._heads(att.linear_q(x))
        k = att._heads(att.linear_k(x)).transpose(1, 2)
        v = att._heads(att.linear_v(x)).transpose(1, 2)
        p = att._heads(att.linear_pos(pos)).transpose(1, 2)
        content = (q + att.pos_bias_u).transpose(1, 2) @ k.transpose(-2, -1)
        position = rel_shift((q + att.pos_bias_v).transpose(1, 2) @ p.transpose(-2, -1))
        scores = (content + position) / math.sqrt(att.d_k)
        scores = scores.masked_fill(~mask[:, None], torch.finfo(scores.dtype).min)
        out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(3, t, -1)
        return att.linear_out(out)

    results = []
    for fn in (lambda x: att(x, pos, mask), out_of_place):
        xi = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = fn(xi)
        y.float().square().sum().backward()
        results.append((y.detach(), xi.grad, [p.grad.clone() for p in att.parameters()]))
        att.zero_grad(set_to_none=True)
    (y1, gx1, gp1), (y2, gx2, gp2) = results
    assert torch.equal(y1, y2) and torch.equal(gx1, gx2)
    assert all(torch.equal(a, b) for a, b in zip(gp1, gp2, strict=True))
