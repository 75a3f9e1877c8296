"""Learning-rate schedules: factors of the base learning rate, one per optimizer step.

``s`` is the number of optimizer steps already taken (``LambdaLR``'s ``last_epoch``: 0 for
the first update), so update number ``s + 1`` uses ``base_lr · factor(s)``. With
W = ``warmup_steps``, T = ``max_steps`` and r = ``min_lr_ratio``:

* warm-up (all schedules): factor(s) = (s + 1) / W while s + 1 < W; update W has the full rate.
* ``noam`` (Vaswani et al., "Attention is all you need", 2017): after warm-up
  factor(s) = max(r, √(W / (s + 1))), an inverse-square-root decay from 1 at s + 1 = W.
* ``cosine`` (Loshchilov & Hutter, "SGDR", 2017): after warm-up, with progress
  q = (s + 1 − W) / (T − W) clamped to [0, 1], factor(s) = r + (1 − r)(1 + cos πq) / 2:
  1 at s + 1 = W, r at the last update s + 1 = T and after it.
* ``constant``: 1 after warm-up.

Each schedule is a small callable dataclass, so a ``LambdaLR`` built from it saves its fields in
``state_dict`` and pickles.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from semiasr.errors import ConfigError

__all__ = [
    "SCHEDULES",
    "ConstantSchedule",
    "CosineSchedule",
    "NoamSchedule",
    "build_scheduler",
    "make_schedule",
]


def _warmup(s: int, warmup_steps: int) -> float | None:
    """(s + 1)/W during warm-up, ``None`` after it."""
    if s + 1 < warmup_steps:
        return (s + 1) / warmup_steps
    return None


@dataclass
class NoamSchedule:
    """Linear warm-up, then √(W/(s+1)), floored at ``min_lr_ratio``."""

    warmup_steps: int
    min_lr_ratio: float = 0.0

    def __call__(self, s: int) -> float:
        w = _warmup(s, self.warmup_steps)
        if w is not None:
            return w
        return max(self.min_lr_ratio, math.sqrt(max(self.warmup_steps, 1) / (s + 1)))


@dataclass
class CosineSchedule:
    """Linear warm-up, then a half cosine from 1 to ``min_lr_ratio`` at update ``max_steps``."""

    warmup_steps: int
    max_steps: int
    min_lr_ratio: float = 0.0

    def __call__(self, s: int) -> float:
        w = _warmup(s, self.warmup_steps)
        if w is not None:
            return w
        span = max(1, self.max_steps - max(self.warmup_steps, 1))
        q = min(1.0, max(0.0, (s + 1 - max(self.warmup_steps, 1)) / span))
        r = self.min_lr_ratio
        return r + (1.0 - r) * 0.5 * (1.0 + math.cos(math.pi * q))


@dataclass
class ConstantSchedule:
    """Linear warm-up, then 1."""

    warmup_steps: int = 0

    def __call__(self, s: int) -> float:
        w = _warmup(s, self.warmup_steps)
        return 1.0 if w is None else w


SCHEDULES = ("noam", "cosine", "constant")


def make_schedule(cfg: Any, max_steps: int) -> NoamSchedule | CosineSchedule | ConstantSchedule:
    """The factor function named by ``cfg.name`` (a :class:`~semiasr.optim.config.SchedConfig`)."""
    name, warmup, ratio = str(cfg.name), int(cfg.warmup_steps), float(cfg.min_lr_ratio)
    if warmup < 0:
        raise ConfigError(
            f"sched.warmup_steps must be >= 0, got {warmup}", key="sched.warmup_steps"
        )
    if not 0.0 <= ratio <= 1.0:
        raise ConfigError(
            f"sched.min_lr_ratio must be in [0, 1], got {ratio}", key="sched.min_lr_ratio"
        )
    if name == "noam":
        return NoamSchedule(warmup, ratio)
    if name == "cosine":
        if max_steps <= warmup:
            raise ConfigError(
                f"sched.name=cosine needs max_steps ({max_steps}) > sched.warmup_steps ({warmup})",
                key="sched.warmup_steps",
            )
        return CosineSchedule(warmup, max_steps, ratio)
    if name == "constant":
        return ConstantSchedule(warmup)
    close = difflib.get_close_matches(name, SCHEDULES, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"sched.name: unknown schedule '{name}' (known: {', '.join(SCHEDULES)}){hint}",
        key="sched.name",
        suggestion=close[0] if close else None,
    )


def build_scheduler(optimizer: Optimizer, cfg: Any, max_steps: int) -> LambdaLR:
    """A ``LambdaLR`` over every parameter group; call its ``.step()`` after each update."""
    return LambdaLR(optimizer, make_schedule(cfg, max_steps))
