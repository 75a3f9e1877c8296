"""Typed configs (OmegaConf structured configs) loaded from YAML and overridden as ``key=value``."""

from __future__ import annotations

from semiasr.config.loader import as_object, available_configs, config_path, load_config, to_yaml
from semiasr.config.schema import ExperimentConfig

__all__ = [
    "ExperimentConfig",
    "as_object",
    "available_configs",
    "config_path",
    "load_config",
    "to_yaml",
]
