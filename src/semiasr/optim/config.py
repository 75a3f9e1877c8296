"""Configs of the optimizers and learning-rate schedules (see docs/optimizers.md)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OptimConfig:
    """``name`` is "adamw" or "fadam". ``clip`` (the per-tensor RMS bound c; ``.inf`` turns it
    off) and ``p`` (the Fisher exponent) are used by FAdam only. ``weight_decay`` is AdamW's
    decoupled decay or FAdam's λ; parameters with fewer than two dimensions never decay.
    ``lr_scales``: {parameter-name glob: factor} — a parameter matching a glob (the first that
    matches, see :mod:`semiasr.globs`) learns at ``factor · lr`` (e.g. ``{adapters: 3.0}``: new
    modules faster than the pretrained parts around them). ``implementation`` (AdamW only):
    "fused" (one kernel for every parameter, PyTorch's ``fused=True``; CPU and GPU), "foreach"
    (batched tensor ops), "loop" (one parameter at a time, PyTorch's CPU default), or "auto":
    fused where every parameter is a floating-point tensor on a device with fused kernels, else
    PyTorch's default. A run resumed from a checkpoint keeps the implementation it was saved
    with, so resuming stays exact."""

    name: str = "adamw"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    weight_decay: float = 1e-3
    clip: float = 1.0
    p: float = 0.5
    lr_scales: dict[str, float] = field(default_factory=dict)
    implementation: str = "auto"


@dataclass
class SchedConfig:
    """``name`` is "noam" (linear warm-up, inverse-square-root decay), "cosine" or "constant",
    each with linear warm-up over ``warmup_steps``; the decay stops at ``min_lr_ratio`` times
    the base rate."""

    name: str = "noam"
    warmup_steps: int = 500
    min_lr_ratio: float = 0.0
