"""Data parallelism under ``torchrun``: process-group set-up and the module that DDP wraps.

Each of the ``world_size`` processes computes the objective on its own shard of the global batch;
``DistributedDataParallel`` averages the gradients, so with equal shards the update equals one
process's update on the whole global batch when the objective is a per-utterance *mean*:

    ∇ (1/W) Σ_r mean_{i ∈ shard r} ℓ_i  =  ∇ mean_{i ∈ global batch} ℓ_i .

Objectives call model methods (``model.encode``, ``model.joiner``, …), not ``model.forward``, and
DDP only hooks its wrapped module's ``forward``. So the trainer wraps :class:`ObjectiveModule` —
whose ``forward(batch)`` *is* ``objective(model, batch)`` — in DDP: every parameter the objective
touches is reached through that one forward call, and DDP's gradient reducer sees them all."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "DistInfo",
    "ObjectiveModule",
    "all_gather_objects",
    "dist_info",
    "init_distributed",
    "shutdown_distributed",
]

Objective = Callable[[nn.Module, Any], "tuple[Tensor, dict[str, Any]]"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its
    machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """The job layout: from the live process group if there is one, else from torchrun's
    variables."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0"))
        )
    return DistInfo(
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_distributed(device: torch.device, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1): NCCL on CUDA, gloo
    on
    CPU. Does nothing when run as one process or when a group exists already."""
    info = dist_info()
    if not info.distributed or dist.is_initialized():
        return info
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return dist_info()


def shutdown_distributed() -> None:
    """Leave the process group (call once at the end of a ``torchrun`` script, after every
    ``DistributedDataParallel`` wrapper is gone). All ranks meet at a barrier first, so that no
    rank tears down its connections while another still uses them."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, …]`` on every rank; ``[obj]`` without a process group."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


class ObjectiveModule(nn.Module):
    """``forward(batch) = objective(model, batch)``: the model and the objective as one module.

    The model is registered as ``self.model``; an objective that is itself an ``nn.Module`` (one
    with parameters or buffers) as ``self.objective``, so DDP reduces its gradients too."""

    def __init__(self, model: nn.Module, objective: Objective):
        super().__init__()
        self.model = model
        if isinstance(objective, nn.Module):
            self.objective = objective
        else:
            self._objective_fn = objective

    def forward(self, batch: Any) -> tuple[Tensor, dict[str, Any]]:
        fn = self.objective if "objective" in self._modules else self._objective_fn
        return fn(self.model, batch)
