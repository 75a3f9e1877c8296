"""Build the optimizer named by an :class:`~semiasr.optim.config.OptimConfig`.

``optim.name`` is ``adamw`` (:class:`torch.optim.AdamW`) or ``fadam``
(:class:`~semiasr.optim.fadam.FAdam`).

Weight decay, when given a model: every trainable parameter with fewer than two dimensions
(biases, the scales and shifts of LayerNorm / BatchNorm / RMSNorm, scalar gains) goes into a
second parameter group with ``weight_decay = 0``; matrices, convolution kernels and embeddings
(two or more dimensions) decay with ``optim.weight_decay``. Frozen parameters
(``requires_grad=False``) are left out. Given an iterable of tensors or of parameter-group
dicts instead, the groups are used as they are.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from semiasr.errors import ConfigError
from semiasr.optim.fadam import FAdam

__all__ = ["OPTIMIZERS", "build_optimizer", "decay_groups"]

OPTIMIZERS = ("adamw", "fadam")


def decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two parameter groups: tensors with ndim ≥ 2 decay, tensors with ndim < 2 do not.
    Empty groups are dropped."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(
    params_or_model: nn.Module | Iterable[torch.Tensor] | Iterable[dict[str, Any]], cfg: Any
) -> Optimizer:
    """The optimizer ``cfg.name`` over a model's trainable parameters (decay groups as above)
    or over the given parameters / groups. ``cfg`` is an OptimConfig or the ``optim`` node of
    a loaded config."""
    name = str(cfg.name)
    wd = float(cfg.weight_decay)
    if isinstance(params_or_model, nn.Module):
        params: Any = decay_groups(params_or_model, wd)
    else:
        params = list(params_or_model)
    if not params:
        raise ConfigError(f"optim.name={name}: no trainable parameters to optimize")
    betas = (float(cfg.beta1), float(cfg.beta2))
    common = dict(lr=float(cfg.lr), betas=betas, eps=float(cfg.eps), weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, **common)
    if name == "fadam":
        return FAdam(params, clip=float(cfg.clip), p=float(cfg.p), **common)
    close = difflib.get_close_matches(name, OPTIMIZERS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"optim.name: unknown optimizer '{name}' (known: {', '.join(OPTIMIZERS)}){hint}",
        key="optim.name",
        suggestion=close[0] if close else None,
    )
