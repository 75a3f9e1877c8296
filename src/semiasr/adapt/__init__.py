"""Parameter-efficient domain adaptation: residual adapters, LoRA, per-domain routing (MDA),
hierarchical feature fusion (HFF), freezing by name, adaptation checkpoints, and an optional
wrapper of Hugging Face speech encoders (``semiasr.adapt.hf``, needs ``transformers``).

Every method attaches to a model from outside (hooks, added submodules at the root) and leaves the
base model's parameter names unchanged, so base checkpoints still load into an adapted model.
"""

from __future__ import annotations

from semiasr.adapt.adapters import ResidualAdapter, add_adapters
from semiasr.adapt.checkpoint import base_fingerprint, load_adaptation, save_adaptation
from semiasr.adapt.config import METHODS, AdaptConfig
from semiasr.adapt.domains import (
    DomainRoutedObjective,
    add_domain_adapters,
    add_domain_modules,
    domain_context,
)
from semiasr.adapt.freeze import freeze_all_but, parameter_summary, summary_rows
from semiasr.adapt.fusion import HierarchicalFusion, WeightedSumFusion, add_feature_fusion
from semiasr.adapt.lora import LoRA, apply_lora, merge_lora, unmerge_lora
from semiasr.adapt.prepare import prepare_adaptation

__all__ = [
    "METHODS",
    "AdaptConfig",
    "DomainRoutedObjective",
    "HierarchicalFusion",
    "LoRA",
    "ResidualAdapter",
    "WeightedSumFusion",
    "add_adapters",
    "add_domain_adapters",
    "add_domain_modules",
    "add_feature_fusion",
    "apply_lora",
    "base_fingerprint",
    "domain_context",
    "freeze_all_but",
    "load_adaptation",
    "merge_lora",
    "parameter_summary",
    "prepare_adaptation",
    "save_adaptation",
    "summary_rows",
    "unmerge_lora",
]
