"""Hierarchical feature fusion (HFF): a frozen encoder's per-layer outputs, fused by a small
trainable network into the decoder's input (Huo et al., "Resource-Efficient Transfer Learning From
Speech Foundation Model Using Hierarchical Feature Fusion", 2022).

The encoder's L layer outputs H_1 … H_L, each (B, T, D), are recorded with forward hooks while the
encoder runs under ``torch.no_grad()``: no activation of the encoder is kept for backward and no
gradient reaches it. Two fusion networks (the paper's exact formula is not public; these are ours):

* ``WeightedSumFusion`` (baseline, as in SUPERB):   y = P( Σ_l softmax(w)_l · H_l )
* ``HierarchicalFusion``: the layers are cut into G groups of k consecutive layers (the last may be
  shorter); each group is summed with its own softmax weights and projected, and the groups are
  chained bottom-up with a residual and a LayerNorm:

      S_g = Σ_{l ∈ group g} softmax(w_g)_l · H_l
      h_0 = 0,   h_g = LN_g( h_{g−1} + W_g S_g + b_g ),   g = 1 … G
      y   = P( h_G )

P: D -> D_out is a Linear initialised to the identity when D_out = D. W_g is initialised to the
identity too, so at the start y is a sum of normalised group averages, close to the features that
the top layers give.

``add_feature_fusion`` makes a model's encoder return the fused y in place of its own output. When
parameters inside the encoder train (adapters, LoRA: "hff+adapters"), the encoder runs with
autograd on, and the gradient flows back through the frozen layers to the adapters: that costs the
activation memory of the whole encoder again, as in plain adapter training, and only the weight
gradients of the frozen layers are saved.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from semiasr.adapt.adapters import infer_width, place_like
from semiasr.adapt.names import adapt_state, join_name, matching_modules, root_container
from semiasr.adapt.outputs import main_tensor, replace_main_tensor
from semiasr.errors import ConfigError, SemiasrError

__all__ = [
    "FusedForward",
    "HierarchicalFusion",
    "WeightedSumFusion",
    "add_feature_fusion",
    "make_fusion",
]


def _identity_linear(d_in: int, d_out: int) -> nn.Linear:
    proj = nn.Linear(d_in, d_out)
    if d_in == d_out:
        with torch.no_grad():
            proj.weight.copy_(torch.eye(d_in))
            proj.bias.zero_()
    return proj


def weighted_sum(weights: Tensor, hidden: Sequence[Tensor]) -> Tensor:
    """Σ_l softmax(weights)_l · hidden_l for a list of (B, T, D) tensors -> (B, T, D)."""
    alpha = torch.softmax(weights, dim=0)
    return torch.einsum("l,lbtd->btd", alpha, torch.stack(list(hidden)))


class WeightedSumFusion(nn.Module):
    """y = P(Σ_l softmax(w)_l · H_l): L layers of width D -> (B, T, d_out)."""

    def __init__(self, num_layers: int, d_model: int, d_out: int | None = None):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))
        self.proj = _identity_linear(d_model, d_out or d_model)

    def forward(self, hidden: Sequence[Tensor]) -> Tensor:
        _check_layers(hidden, self.weights.numel())
        return self.proj(weighted_sum(self.weights, hidden))


class HierarchicalFusion(nn.Module):
    """h_g = LN_g(h_{g−1} + W_g Σ_{l∈g} softmax(w_g)_l H_l), y = P(h_G); ``group_size`` layers
    per group."""

    def __init__(self, num_layers: int, d_model: int, group_size: int, d_out: int | None = None):
        super().__init__()
        if group_size < 1:
            raise ConfigError(f"fusion group size must be ≥ 1: {group_size}", key="fusion_group")
        starts = range(0, num_layers, group_size)
        self.groups = [(start, min(start + group_size, num_layers)) for start in starts]
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.zeros(stop - start)) for start, stop in self.groups]
        )
        self.projs = nn.ModuleList([_identity_linear(d_model, d_model) for _ in self.groups])
        self.norms = nn.ModuleList([nn.LayerNorm(d_model) for _ in self.groups])
        self.proj = _identity_linear(d_model, d_out or d_model)
        self.num_layers = num_layers

    def forward(self, hidden: Sequence[Tensor]) -> Tensor:
        _check_layers(hidden, self.num_layers)
        h: Tensor | float = 0.0
        for (start, stop), w, proj, norm in zip(self.groups, self.weights, self.projs, self.norms):
            h = norm(h + proj(weighted_sum(w, hidden[start:stop])))
        assert isinstance(h, Tensor)
        return self.proj(h)


def _check_layers(hidden: Sequence[Tensor], expected: int) -> None:
    if len(hidden) != expected:
        raise SemiasrError(f"fusion expects {expected} layer outputs, got {len(hidden)}")


def make_fusion(
    kind: str, num_layers: int, d_model: int, group_size: int = 2, d_out: int | None = None
) -> nn.Module:
    """``"weighted"`` -> WeightedSumFusion, ``"hierarchical"`` -> HierarchicalFusion."""
    if kind == "weighted":
        return WeightedSumFusion(num_layers, d_model, d_out)
    if kind == "hierarchical":
        return HierarchicalFusion(num_layers, d_model, group_size, d_out)
    raise ConfigError(f"unknown fusion {kind!r}; choose 'weighted' or 'hierarchical'", key="fusion")


class FusedForward:
    """The replacement ``forward`` of the encoder: run the base forward (under no_grad unless a
    parameter inside the encoder trains), record each layer's output, return the fused features in
    place of the encoder's own output."""

    def __init__(
        self,
        base: Callable,
        encoder: nn.Module,
        layers: list[nn.Module],
        fusion: nn.Module,
        extra: Callable[[], list[nn.Module]],
    ):
        self.base = base
        self.encoder = encoder
        self.layers = layers
        self.fusion = fusion
        self.extra = extra

    def encoder_trains(self) -> bool:
        """True when a parameter that takes part in the encoder's forward requires grad."""
        own = {id(p) for p in self.fusion.parameters()}
        modules = [self.encoder, *self.extra()]
        return any(p.requires_grad and id(p) not in own for m in modules for p in m.parameters())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        recorded: list[Tensor] = []
        handles = [
            layer.register_forward_hook(lambda m, a, out: recorded.append(main_tensor(out)))
            for layer in self.layers
        ]
        grad_mode = nullcontext() if self.encoder_trains() else torch.no_grad()
        try:
            with grad_mode:
                output = self.base(*args, **kwargs)
        finally:
            for h in handles:
                h.remove()
        fused = self.fusion(recorded)
        frames = main_tensor(output)
        if fused.shape != frames.shape:
            raise SemiasrError(
                f"fused features {tuple(fused.shape)} do not match the encoder output "
                f"{tuple(frames.shape)}; set the fusion's d_out"
            )
        return replace_main_tensor(output, _zero_padding(fused, getattr(output, "lengths", None)))


def _zero_padding(frames: Tensor, lengths: Tensor | None) -> Tensor:
    """Zero the frames past each row's length, as the encoder does (lengths (B,) or None)."""
    if not isinstance(lengths, Tensor) or lengths.shape != frames.shape[:1]:
        return frames
    keep = torch.arange(frames.shape[1], device=frames.device)[None, :] < lengths[:, None]
    return frames.masked_fill(~keep[..., None], 0.0)


class _AttachedInside:
    """Picklable callable: the adaptation modules attached inside the encoder, looked up at call
    time so that adapters added after the fusion count too."""

    def __init__(self, state: Any, prefix: str):
        self.state = state
        self.prefix = prefix

    def __call__(self) -> list[nn.Module]:
        return self.state.modules_inside(self.prefix)


def add_feature_fusion(
    model: nn.Module,
    encoder: str = "encoder",
    layers: str = "layers.*",
    kind: str = "hierarchical",
    group_size: int = 2,
    *,
    d_model: int | None = None,
    d_out: int | None = None,
) -> nn.Module:
    """Make ``model``'s encoder submodule (dotted name; "" = the model) return the fusion of its
    layers' outputs (``layers`` is a glob relative to the encoder). Freezing is left to the
    caller. The fusion lives in ``model.fusion["net"]``; returns it."""
    enc = model.get_submodule(encoder) if encoder else model
    found = matching_modules(model, join_name(encoder, layers), what="encoder layer")
    layer_modules = [m for _, m in found]
    if "forward" in enc.__dict__:
        raise ConfigError(f"{encoder or 'the model'} already has its forward replaced")
    width = d_model if d_model is not None else infer_width(layer_modules[-1])
    fusion = place_like(make_fusion(kind, len(layer_modules), width, group_size, d_out), enc)
    root_container(model, "fusion")["net"] = fusion
    state = adapt_state(model)
    base = types.MethodType(type(enc).forward, enc)
    enc.forward = FusedForward(base, enc, layer_modules, fusion, _AttachedInside(state, encoder))
    return fusion
