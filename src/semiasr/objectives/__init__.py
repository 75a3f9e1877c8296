"""semiasr.objectives: training objectives, each ``objective(model, batch) → (loss, metrics)``."""

from __future__ import annotations

from torch import nn

from semiasr.objectives.bestrq import BestRQObjective, JointObjective
from semiasr.objectives.ctc import CTCObjective
from semiasr.objectives.transducer import TransducerObjective

__all__ = [
    "BestRQObjective",
    "CTCObjective",
    "JointObjective",
    "TransducerObjective",
    "objective_for",
]


def objective_for(model: nn.Module) -> TransducerObjective | CTCObjective:
    """The supervised objective that fits ``model`` (a Transducer or a CTCModel, possibly
    DDP-wrapped)."""
    from semiasr.models import CTCModel

    inner = getattr(model, "module", model)
    return CTCObjective() if isinstance(inner, CTCModel) else TransducerObjective()
