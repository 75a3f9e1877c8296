"""Config of the training loop (:class:`semiasr.train.Trainer`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    """How the trainer loops, checkpoints and reports. Step counts are optimizer updates.

    ``accum_steps`` micro-batches make one update; ``grad_clip`` <= 0 turns clipping off;
    ``precision`` "auto" uses bf16 autocast where the device computes bf16 natively, "bf16" insists
    on it, "fp32" never autocasts. ``eval_every`` / ``ckpt_every`` of 0 turn evaluation / periodic
    checkpoints off. ``keep_last`` step checkpoints stay on disk (at least ``average_last`` of
    them), plus ``best.pt`` chosen by ``best_metric`` of the eval callback (``best_mode`` "min" or
    "max"). ``average_last`` > 0 writes ``averaged.pt``, the mean of the last N checkpoints, when
    training ends. A step whose loss or gradient is not finite is skipped; training stops after
    ``max_bad_steps`` consecutive ones, or ``max_bad_steps_total`` in all (0: no total limit).
    ``max_epochs`` 0: no limit. ``frame_shift_s`` turns feature frames into audio seconds for the
    throughput meter."""

    max_steps: int = 2000
    max_epochs: int = 0
    grad_clip: float = 5.0
    accum_steps: int = 1
    precision: str = "auto"  # "auto" | "fp32" | "bf16"
    log_every: int = 10
    eval_every: int = 500
    ckpt_every: int = 200
    keep_last: int = 3
    average_last: int = 0
    best_metric: str = "wer"
    best_mode: str = "min"  # "min" | "max"
    max_bad_steps: int = 20
    max_bad_steps_total: int = 0
    frame_shift_s: float = 0.01
    find_unused_parameters: bool = False
    tensorboard: bool = False
    progress: bool = True
