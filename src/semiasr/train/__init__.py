"""semiasr.train: the :class:`Trainer` (accumulation, clipping, bf16 autocast, DDP under torchrun,
atomic checkpoints with exact resume, metrics and progress) and its helpers."""

from __future__ import annotations

from semiasr.train.checkpoint import (
    CheckpointManager,
    average_checkpoints,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from semiasr.train.config import TrainConfig
from semiasr.train.distributed import (
    DistInfo,
    ObjectiveModule,
    dist_info,
    init_distributed,
    shutdown_distributed,
)
from semiasr.train.runtime import resolve_device, resolve_precision, set_seed
from semiasr.train.trainer import FitSummary, NonFiniteLossError, Trainer

__all__ = [
    "CheckpointManager",
    "DistInfo",
    "FitSummary",
    "NonFiniteLossError",
    "ObjectiveModule",
    "TrainConfig",
    "Trainer",
    "average_checkpoints",
    "dist_info",
    "init_distributed",
    "load_checkpoint",
    "load_model_state",
    "resolve_device",
    "resolve_precision",
    "save_checkpoint",
    "set_seed",
    "shutdown_distributed",
]
