"""A depthwise convolution over the time axis of (B, T, C) features, as the Conformer's convolution
module uses it.

``depthwise_conv_time(h, weight, bias, padding)`` equals ``F.conv1d(F.pad(h.transpose(1, 2),
padding), weight, bias, groups=C).transpose(1, 2)``. On the CPU (float32 or float64, autocast off,
numba present) it runs the numba kernels of :mod:`semiasr.nn.kernels` in the (B, T, C) layout — no
padded copy, no transposes, no oneDNN primitive to build for each new batch shape — with a written
backward; elsewhere it is that ``F.conv1d``, padded in the (B, T, C) layout and handed a transposed
view (on a CPU the same sums as padding the transposed tensor, bit for bit). Equal to ``F.conv1d``
to 1e-12 in float64 (tested), in float32 to rounding: the kernels sum the taps in another order.
``valid`` (B, T) bool, True on the frames to read, treats the others as zeros: the kernels skip them
(the sums of ``h.masked_fill(~valid[..., None], 0)``, bit for bit, without that copy and its
backward), elsewhere ``h`` is masked so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

try:
    from semiasr.nn import kernels as _kernels
except ImportError:  # pragma: no cover - numba is a declared dependency
    _kernels = None

__all__ = ["DepthwiseConvTime", "depthwise_conv_time", "runs_kernels", "zero_invalid"]


class DepthwiseConvTime(nn.Conv1d):
    """A depthwise ``nn.Conv1d`` (one kernel of ``kernel`` taps per channel, with bias) applied to
    (B, T, C) features with ``padding`` = (left, right) zero frames: (B, T, C) → (B, T + left +
    right − kernel + 1, C), through :func:`depthwise_conv_time`. Its parameters are the Conv1d's
    (``weight`` (C, 1, K), ``bias``), so state dicts and name globs see a Conv1d; hooks on it see
    the (B, T, C) tensors. ``pad_mask`` (B, T) bool, True on valid frames: the others count as
    zeros (the Conformer's convolution module passes its own; a convolution adapter on this module
    gets it too)."""

    def __init__(self, channels: int, kernel: int, padding: tuple[int, int]):
        super().__init__(channels, channels, kernel, groups=channels)
        self.time_padding = (int(padding[0]), int(padding[1]))

    def forward(self, h: Tensor, pad_mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        return depthwise_conv_time(h, self.weight, self.bias, self.time_padding, pad_mask)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, time_padding={self.time_padding}, layout=(B, T, C)"


def depthwise_conv_time(
    h: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    padding: tuple[int, int],
    valid: Tensor | None = None,
) -> Tensor:
    """``h`` (B, T, C) through a depthwise convolution of ``weight`` (C, 1, K) and ``bias`` (C,)
    over time, with ``padding`` = (left, right) zero frames: (B, T + left + right − K + 1, C).
    ``valid`` (B, T) bool: the frames of ``h`` where it is False count as zeros."""
    channels, taps = weight.shape[0], weight.shape[-1]
    if h.dim() != 3 or h.shape[2] != channels or weight.shape[1] != 1:
        raise ValueError(
            f"expected h (B, T, {channels}) and a depthwise weight (C, 1, K), got "
            f"{tuple(h.shape)} and {tuple(weight.shape)}"
        )
    left, right = padding
    if h.shape[1] + left + right < taps:
        raise ValueError(
            f"a convolution of {taps} taps needs at least {taps} frames; got {h.shape[1]} with "
            f"padding ({left}, {right})"
        )
    if runs_kernels(h, weight, bias):
        _check_valid(h, valid)
        return _DepthwiseTime.apply(h, weight, bias, left, right, valid)
    y = F.conv1d(F.pad(zero_invalid(h, valid), (0, 0, left, right)).transpose(1, 2), weight, bias,
                 groups=channels)  # fmt: skip
    return y.transpose(1, 2)


def _check_valid(h: Tensor, valid: Tensor | None) -> None:
    if valid is not None and tuple(valid.shape) != tuple(h.shape[:2]):
        raise ValueError(f"valid must be (B, T) = {tuple(h.shape[:2])}, got {tuple(valid.shape)}")


def zero_invalid(h: Tensor, valid: Tensor | None) -> Tensor:
    """``h`` (B, T, C) with the frames where ``valid`` (B, T; bool or 0/1) is False set to zero: a
    copy (``h`` itself without a mask)."""
    _check_valid(h, valid)
    return h if valid is None else h.masked_fill(~valid.bool()[..., None], 0.0)


def runs_kernels(h: Tensor, weight: Tensor, bias: Tensor | None) -> bool:
    """Whether :func:`depthwise_conv_time` takes the numba kernels for these tensors: numba
    present, a CPU tensor in float32 or float64, the weight and bias in its dtype, autocast off."""
    return (
        _kernels is not None
        and h.device.type == "cpu"
        and h.dtype in (torch.float32, torch.float64)
        and weight.dtype == h.dtype
        and (bias is None or bias.dtype == h.dtype)
        and not torch.is_autocast_enabled("cpu")
    )


class _DepthwiseTime(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, left, right, valid):
        bsz, t_in, ch = h.shape
        taps = weight.shape[-1]
        h = h.detach().contiguous()
        w_t = weight.detach().reshape(ch, taps).t().contiguous()  # (K, C)
        b = bias.detach() if bias is not None else h.new_zeros(ch)
        y = h.new_empty(bsz, t_in + left + right - taps + 1, ch)
        if valid is None:  # (B, 0): every frame
            v = torch.empty(bsz, 0, dtype=torch.uint8)
        else:
            v = valid.detach().to(torch.uint8).contiguous()
        _kernels.depthwise_forward(
            h.numpy(), w_t.numpy(), b.contiguous().numpy(), left, v.numpy(), y.numpy()
        )
        ctx.save_for_backward(h, w_t, v)
        ctx.left = left
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        h, w_t, v = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        gy = gy.to(h.dtype).contiguous()
        gh = gw = gb = None
        if need_h:
            gh = torch.empty_like(h)
            _kernels.depthwise_input_grad(w_t.numpy(), gy.numpy(), ctx.left, v.numpy(), gh.numpy())
        if need_w or (need_b and ctx.has_bias):
            gw_t, gb = torch.empty_like(w_t), h.new_empty(h.shape[2])
            _kernels.depthwise_weight_grad(
                h.numpy(), gy.numpy(), ctx.left, v.numpy(), gw_t.numpy(), gb.numpy()
            )
            gw = gw_t.t().unsqueeze(1) if need_w else None  # (C, 1, K)
            gb = gb if need_b and ctx.has_bias else None
        return gh, gw, gb, None, None, None
