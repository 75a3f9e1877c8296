"""The top-level experiment config: one typed tree that names everything a run builds.

Each component's dataclass lives next to the module it configures; this file only assembles them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from semiasr.adapt.config import AdaptConfig
from semiasr.data.config import DataConfig
from semiasr.decoding.config import DecodeConfig
from semiasr.models.bestrq import BestRQConfig
from semiasr.models.config import ModelConfig
from semiasr.optim.config import OptimConfig, SchedConfig
from semiasr.train.config import TrainConfig


@dataclass
class ExperimentConfig:
    """A whole run. ``name`` is the run directory under ``run_root``; ``seed`` drives every random choice.
    ``base_run`` is set on adaptation runs only: the run directory of the model that ``adapt`` adapts."""

    name: str = "default"
    seed: int = 0
    run_root: str = "runs"
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    # Adaptation runs (`semiasr adapt`): the run whose model is adapted, and how.
    base_run: str = ""
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    # Self-supervised pretraining (`semiasr pretrain`): BEST-RQ masked prediction.
    ssl: BestRQConfig = field(default_factory=BestRQConfig)
