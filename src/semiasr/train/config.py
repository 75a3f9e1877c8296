"""Config of the training loop."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    max_steps: int = 2000
    grad_clip: float = 5.0
    accum_steps: int = 1
    precision: str = "auto"  # "auto" | "fp32" | "bf16"
    log_every: int = 10
    eval_every: int = 500
    ckpt_every: int = 200
    keep_last: int = 3
    average_last: int = 0
    max_bad_steps: int = 20
    tensorboard: bool = False
    progress: bool = True
