"""Residual bottleneck adapters attached to a model's blocks from outside.

    y = x + W_up · act(W_down · LN(x) + b_down) + b_up
    x, y: (B, T, D),   W_down: (r, D),   W_up: (D, r)

with bottleneck r ≪ D and W_up, b_up zero-initialised, so a fresh adapter is the identity and the
adapted model computes bit for bit what the base model computes (Houlsby et al.,
"Parameter-Efficient Transfer Learning for NLP", 2019; Li et al., "Efficient Domain Adaptation for
Speech Foundation Models", 2023, fine-tune such adapters plus the decoder on a frozen encoder).

``add_adapters`` puts an adapter on the output of chosen modules (a whole block, or a submodule of
it such as ``ff2``) with a forward hook: in series, ``y = A(f(x))``, or in parallel with the module,
``y = f(x) + s · (A(x) − x)``, the adapter reading the module's input (He et al., "Towards a Unified
View of Parameter-Efficient Transfer Learning", 2022). ``conv_kernel=k`` adds a depthwise
convolution over time inside the bottleneck, ``up(dwconv_k(act(down(LN(x)))))``, its kernel the
identity at first; padded frames (the module's boolean ``(B, T)`` mask argument) are zeroed before
it, and it is causal for a causal encoder. The adapters live in ``model.adapters`` (an
``nn.ModuleDict`` keyed by the dotted target name with ``-`` for ``.``), so the base model's
parameter names do not change and a base checkpoint still loads into the adapted model.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semiasr.adapt.names import adapt_state, join_name, key_of, matching_modules, root_container
from semiasr.adapt.outputs import main_tensor, replace_main_tensor
from semiasr.errors import ConfigError
from semiasr.nn.depthwise import depthwise_conv_time, runs_kernels, zero_invalid

__all__ = [
    "ADAPTER_MODES",
    "PadMaskArg",
    "ResidualAdapter",
    "adapter_targets",
    "add_adapters",
    "encoder_is_causal",
    "infer_width",
    "takes_pad_mask",
]

ADAPTER_MODES = ("serial", "parallel")

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "swish": nn.SiLU}


def activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class ResidualAdapter(nn.Module):
    """x (…, D) -> x + up(act(down(LN(x)))), identity at initialisation."""

    def __init__(
        self,
        d_model: int,
        bottleneck: int,
        act: str = "relu",
        dropout: float = 0.0,
        conv_kernel: int = 0,
        causal: bool = False,
    ):
        super().__init__()
        if bottleneck < 1 or d_model < 1:
            raise ConfigError(f"adapter sizes must be positive, got d={d_model} r={bottleneck}")
        if conv_kernel < 0 or (conv_kernel and not causal and conv_kernel % 2 == 0):
            raise ConfigError(
                f"adapter_conv_kernel must be 0 (none) or, for a full-context encoder, odd; "
                f"got {conv_kernel}",
                key="adapter_conv_kernel",
            )
        self.norm = nn.LayerNorm(d_model)
        self.down = nn.Linear(d_model, bottleneck)
        self.act = activation(act)
        self.conv: nn.Conv1d | None = None
        if conv_kernel:
            self.conv = nn.Conv1d(bottleneck, bottleneck, conv_kernel, groups=bottleneck)
            with torch.no_grad():  # the identity: the centre (causal: last) tap 1, the rest 0
                self.conv.weight.zero_()
                self.conv.weight[:, 0, conv_kernel - 1 if causal else conv_kernel // 2] = 1.0
                self.conv.bias.zero_()
            k = conv_kernel - 1
            self.padding = (k, 0) if causal else (k // 2, k // 2)
        self.dropout = nn.Dropout(dropout)
        self.up = nn.Linear(bottleneck, d_model)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def delta(self, x: Tensor, pad_mask: Tensor | None = None) -> Tensor:
        """The residual branch alone: up(act(down(LN(x)))), with the depthwise convolution over
        time after the activation where the adapter has one (``pad_mask`` (B, T), True on valid
        frames: padded frames count as zeros in it, so they cannot reach valid ones)."""
        h = self.act(self.down(self.norm(x)))
        if self.conv is not None:
            h = time_conv(h, self.conv, self.padding, pad_mask)
        return self.up(self.dropout(h))

    def forward(self, x: Tensor, pad_mask: Tensor | None = None) -> Tensor:
        return x + self.delta(x, pad_mask)

    def on_output(self, module: nn.Module, args: Any, output: Any) -> Any:
        """Forward hook: adapt the main tensor of ``module``'s output."""
        return replace_main_tensor(output, self(main_tensor(output)))


class _TimeConv(torch.autograd.Function):
    """Depthwise convolution over time as block-Toeplitz matrix products (see time_conv)."""

    @staticmethod
    def forward(ctx, h: Tensor, w: Tensor, left: int, right: int) -> Tensor:
        B, T, C = h.shape
        k = w.shape[1]
        L = max(32, k - 1)  # block length: each block's window reaches at most one block on
        To = T + left + right - k + 1
        if To < 1:
            raise ValueError(
                f"a convolution of {k} taps needs at least {k} frames; got {T} with padding "
                f"({left}, {right})"
            )
        nb = -(-To // L)
        span = L + k - 1
        hp = F.pad(h, (0, 0, left, nb * L + k - 1 - T - left))  # (B, nb*L + k - 1, C)
        x = hp.unfold(1, span, L).permute(2, 0, 1, 3).reshape(C, B * nb, span)
        s = torch.arange(span, device=h.device)[:, None] - torch.arange(L, device=h.device)
        idx = torch.where((s >= 0) & (s < k), s, k)  # (span, L): tap s - t, or k (zero)
        m = F.pad(w, (0, 1))[:, idx]  # (C, span, L), m[c, s, t] = w[c, s - t]
        with torch.autocast(h.device.type, enabled=False):  # in h's dtype, as the backward
            y = torch.bmm(x, m)  # (C, B*nb, L)
        ctx.save_for_backward(x, m)
        ctx.dims = (B, T, C, k, L, nb, left, To)
        return y.reshape(C, B, nb * L)[:, :, :To].permute(1, 2, 0)

    @staticmethod
    @torch.autograd.function.once_differentiable  # x, m are not linked back to h, w
    def backward(ctx, g: Tensor):
        x, m = ctx.saved_tensors
        B, T, C, k, L, nb, left, To = ctx.dims
        span = L + k - 1
        gy = F.pad(g.to(x.dtype).permute(2, 0, 1), (0, nb * L - To)).reshape(C, B * nb, L)
        gh = gw = None
        if ctx.needs_input_grad[1]:
            gm = torch.bmm(x.transpose(1, 2), gy)  # (C, span, L)
            # gw[c, j] = sum_t gm[c, t + j, t]: the j-th diagonal, a strided view
            gw = gm.as_strided((C, k, L), (span * L, L, L + 1), gm.storage_offset()).sum(-1)
        if ctx.needs_input_grad[0]:
            gx = torch.bmm(gy, m.transpose(1, 2)).reshape(C, B, nb, span)
            ghp = gx.new_zeros(C, B, nb + 1, L)
            ghp[:, :, :nb] += gx[..., :L]
            ghp[:, :, 1:, : k - 1] += gx[..., L:]
            gh = ghp.reshape(C, B, (nb + 1) * L)[:, :, left : left + T].permute(1, 2, 0)
        return gh, gw, None, None


def time_conv(
    h: Tensor, conv: nn.Conv1d, padding: tuple[int, int], valid: Tensor | None = None
) -> Tensor:
    """``conv`` (depthwise: one kernel of k taps per channel) over the time axis of ``h`` (B, T, C)
    with ``padding`` (left, right) zero frames: (B, T + left + right − k + 1, C), the same sums as
    ``conv(F.pad(h.transpose(1, 2), padding)).transpose(1, 2)``. ``valid`` (B, T) bool: the frames
    where it is False count as zeros (the kernels skip them; elsewhere ``h`` is masked first).

    On the CPU in float32 or float64 without autocast it runs the numba kernels of
    :func:`semiasr.nn.depthwise.depthwise_conv_time` (forward and backward of a (7, 100–109, 64)
    input with 31 taps, 2 threads: 1.17 ms against 1.45 for the matrix products below and 2.17
    for oneDNN's, ``python benchmarks/depthwise_conv.py --channels 64 --kernel 31``). Elsewhere
    (GPUs, autocast, bfloat16 or half inputs, a weight or bias in another dtype than ``h``) it is
    computed as matrix products: the padded frames are cut into windows of L + k − 1 frames, one
    per block of L outputs (L = max(32, k − 1)), and each channel's window is multiplied by its
    banded (Toeplitz) L + k − 1 by L matrix of taps; the backward is written out the same way. On the CPU, oneDNN's depthwise convolution takes 3–7 ms for forward and
    backward of an adapter's (8, 160, 64) input, mostly set-up for each new batch shape, the
    matrix products 1.3–2.6 ms. Both paths equal ``F.conv1d`` to 1e-12 in float64 (tested)."""
    if (
        conv.groups != conv.in_channels
        or conv.out_channels != conv.in_channels
        or conv.stride != (1,)
        or conv.dilation != (1,)
        or conv.padding != (0,)
    ):
        raise ValueError(
            "time_conv computes a depthwise convolution with stride 1, no dilation and its own "
            f"padding; got {conv}"
        )
    if runs_kernels(h, conv.weight, conv.bias):
        return depthwise_conv_time(h, conv.weight, conv.bias, padding, valid)
    h = zero_invalid(h, valid)
    w = conv.weight[:, 0].to(h.dtype)  # (C, k)
    y = _TimeConv.apply(h, w, *padding)
    return y if conv.bias is None else y + conv.bias.to(y.dtype)


class MaskedHook:
    """Forward hook (``with_kwargs=True``) of a serial adapter with a convolution: adapts the main
    tensor of the module's output, passing the module's ``pad_mask`` argument."""

    def __init__(self, adapter: ResidualAdapter, module: nn.Module):
        self.adapter = adapter
        self.pad_mask = PadMaskArg(module)

    def __call__(self, module: nn.Module, args: Any, kwargs: dict[str, Any], output: Any) -> Any:
        y = main_tensor(output)
        return replace_main_tensor(output, self.adapter(y, self.pad_mask(args, kwargs)))


class ParallelHook:
    """Forward hook (``with_kwargs=True``) adding ``scale · adapter.delta(x)`` to a module's output,
    where ``x`` is the module's input: its first positional argument, or the keyword argument named
    like the first parameter of its ``forward`` (Hugging Face layers pass ``hidden_states=``). The
    input is read after the module ran: a module that changes its input in place is not supported."""

    def __init__(self, adapter: ResidualAdapter, scale: float, name: str, module: nn.Module):
        self.adapter = adapter
        self.scale = float(scale)
        self.name = name
        params = list(inspect.signature(module.forward).parameters)
        self.first = params[0] if params else None  # the input's name, if passed by keyword
        self.pad_mask = PadMaskArg(module)

    def __call__(self, module: nn.Module, args: Any, kwargs: dict[str, Any], output: Any) -> Any:
        x = main_tensor(self._input(module, args, kwargs))
        y = main_tensor(output)
        width = self.adapter.norm.normalized_shape[0]
        if x.shape[-1] != width or y.shape[-1] != width:
            raise ConfigError(
                f"a parallel adapter needs {self.name} to keep the width {width}: its input has "
                f"{x.shape[-1]} features, its output {y.shape[-1]}",
                key=self.name,
            )
        mask = self.pad_mask(args, kwargs) if self.adapter.conv is not None else None
        return replace_main_tensor(output, y + self.scale * self.adapter.delta(x, mask))

    def _input(self, module: nn.Module, args: Any, kwargs: dict[str, Any]) -> Any:
        if args:
            return args[0]
        if self.first is not None and self.first in kwargs:
            return kwargs[self.first]
        raise ConfigError(
            f"a parallel adapter on {self.name} ({type(module).__name__}) cannot find the "
            "module's input: neither a positional argument nor "
            f"{self.first or 'a named first parameter'}=...",
            key=self.name,
        )


PAD_MASK = "pad_mask"


def conv_adapter_causality(
    model: nn.Module, cfg_encoder: str, layers: str, positions: Sequence[str]
) -> set[bool]:
    """The causality (:func:`encoder_is_causal`) that convolution adapters at ``positions`` of
    the blocks ``layers`` (relative to ``cfg_encoder``) would get in ``model``: one value per kind
    found among the targets."""
    targets = adapter_targets(join_name(cfg_encoder, layers), positions)
    return {encoder_is_causal(model, name) for name, _ in matching_modules(model, targets)}


def takes_pad_mask(module: nn.Module) -> bool:
    """Whether ``module.forward`` has a ``pad_mask`` parameter (the Conformer's blocks and
    convolution modules: boolean (B, T), True on valid frames)."""
    return PAD_MASK in inspect.signature(module.forward).parameters


class PadMaskArg:
    """Reads the ``pad_mask`` argument of calls to ``module``, positional or keyword; its position
    is looked up once, here, not on every forward. None where the caller passed None or left it
    out (no padding); None for a module without the parameter."""

    def __init__(self, module: nn.Module):
        params = list(inspect.signature(module.forward).parameters)
        self.index = params.index(PAD_MASK) if PAD_MASK in params else None

    def __call__(self, args: Any, kwargs: dict[str, Any]) -> Tensor | None:
        if self.index is None:
            return None
        return args[self.index] if len(args) > self.index else kwargs.get(PAD_MASK)


def encoder_is_causal(model: nn.Module, name: str) -> bool:
    """Whether the module ``name`` of ``model`` sits in a causal (streaming) encoder: the
    ``cfg.causal`` of its nearest enclosing module that has one (semiasr's Conformer encoder);
    False where none has (Hugging Face encoders are full-context)."""
    modules = dict(model.named_modules())
    parts = name.split(".") if name else []
    for k in range(len(parts), -1, -1):
        causal = getattr(getattr(modules.get(".".join(parts[:k])), "cfg", None), "causal", None)
        if isinstance(causal, bool):
            return causal
    return False


def infer_width(module: nn.Module) -> int:
    """The feature width D of ``module``'s output: its ``d_model`` attribute if it has one, else
    the width of the last LayerNorm, Linear or Conv1d it registers (a block's output norm, an FFN's
    output projection, the convolution module's depthwise convolution)."""
    d = getattr(module, "d_model", None)
    if isinstance(d, int):
        return d
    for m in reversed(list(module.modules())):
        if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1:
            return int(m.normalized_shape[0])
        if isinstance(m, nn.Linear):
            return int(m.out_features)
        if isinstance(m, nn.Conv1d):
            return int(m.out_channels)
    raise ConfigError(
        f"cannot tell the output width of {type(module).__name__}; pass d_model explicitly"
    )


def adapter_targets(layers: str, positions: Sequence[str]) -> list[str]:
    """Module-name patterns for adapters after ``positions`` of each block matched by ``layers``:
    ``"output"`` is the block's own output, any other position a submodule of the block."""
    return [layers if p == "output" else join_name(layers, p) for p in positions]


def add_adapters(
    model: nn.Module,
    layers: str = "encoder.layers.*",
    positions: Sequence[str] = ("output",),
    bottleneck: int = 32,
    *,
    act: str = "relu",
    dropout: float = 0.0,
    d_model: int | None = None,
    mode: str = "serial",
    scale: float = 1.0,
    conv_kernel: int = 0,
    causal: bool | None = None,
) -> dict[str, ResidualAdapter]:
    """Attach a zero-initialised ResidualAdapter to every position of every block matching
    ``layers`` (a dotted glob over module names): ``mode="serial"`` on the module's output,
    ``"parallel"`` beside the module (output + ``scale`` · the adapter's branch of the module's
    input; the module must keep the width). ``conv_kernel``: a depthwise convolution over time in
    each bottleneck; the module must take a ``pad_mask``; the convolution is causal where
    ``causal`` says so, or (None) where the enclosing encoder is (:func:`encoder_is_causal`).
    Returns {target module name: adapter}."""
    if mode not in ADAPTER_MODES:
        raise ConfigError(f"unknown adapter mode {mode!r}; choose one of {ADAPTER_MODES}")
    added: dict[str, ResidualAdapter] = {}
    store = root_container(model, "adapters")
    state = adapt_state(model)
    for name, module in matching_modules(model, adapter_targets(layers, positions), what="block"):
        key = key_of(name)
        if key in store:
            raise ConfigError(f"{name} already has an adapter", key=name)
        if conv_kernel and not takes_pad_mask(module):
            raise ConfigError(
                f"an adapter with a convolution (adapter_conv_kernel={conv_kernel}) on {name} "
                f"needs the padding mask, and {type(module).__name__}.forward takes no "
                f"{PAD_MASK}: the convolution would mix padded frames into valid ones. Put these "
                "adapters on the blocks' outputs or their conv modules, or set adapter_conv_kernel=0",
                key="adapter_conv_kernel",
            )
        width = d_model if d_model is not None else infer_width(module)
        is_causal = encoder_is_causal(model, name) if causal is None else causal
        adapter = ResidualAdapter(width, bottleneck, act, dropout, conv_kernel, is_causal)
        place_like(adapter, module)
        store[key] = adapter
        if mode == "serial" and conv_kernel:
            module.register_forward_hook(MaskedHook(adapter, module), with_kwargs=True)
        elif mode == "serial":
            module.register_forward_hook(adapter.on_output)
        else:
            module.register_forward_hook(
                ParallelHook(adapter, scale, name, module), with_kwargs=True
            )
        state.attach(name, adapter)
        added[name] = adapter
    return added


def place_like(new: nn.Module, like: nn.Module) -> nn.Module:
    """Move ``new`` to the device and floating dtype of ``like``'s first parameter."""
    p = next(like.parameters(), None)
    if p is None:
        return new
    return new.to(device=p.device, dtype=p.dtype if p.is_floating_point() else None)
