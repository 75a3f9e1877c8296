"""semiasr.optim: FAdam (Hwang, 2024), learning-rate schedules, and building both from configs."""

from __future__ import annotations

from semiasr.optim.build import OPTIMIZERS, build_optimizer, decay_groups
from semiasr.optim.config import OptimConfig, SchedConfig
from semiasr.optim.fadam import FAdam
from semiasr.optim.schedules import (
    SCHEDULES,
    ConstantSchedule,
    CosineSchedule,
    NoamSchedule,
    build_scheduler,
    make_schedule,
)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "ConstantSchedule",
    "CosineSchedule",
    "FAdam",
    "NoamSchedule",
    "OptimConfig",
    "SchedConfig",
    "build_optimizer",
    "build_scheduler",
    "decay_groups",
    "make_schedule",
]
