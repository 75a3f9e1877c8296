"""Configs of the optimizers and learning-rate schedules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OptimConfig:
    """``name`` is "adamw" or "fadam"."""

    name: str = "adamw"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-8
    weight_decay: float = 1e-3


@dataclass
class SchedConfig:
    """``name`` is "noam" (linear warm-up, inverse-square-root decay), "cosine" or "constant"."""

    name: str = "noam"
    warmup_steps: int = 500
    min_lr_ratio: float = 0.0
