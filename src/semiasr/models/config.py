"""Configs of the assembled models."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ModelConfig:
    """A Conformer encoder with a transducer or CTC head. ``preset`` (xs, s, m, l) fills the sizes
    that are left at ``0``; explicit values win."""

    kind: str = "transducer"  # "transducer" | "ctc"
    preset: str = "xs"
    d_model: int = 0
    num_layers: int = 0
    num_heads: int = 0
    ff_mult: int = 4
    conv_kernel: int = 15
    subsampling: int = 4
    causal: bool = False
    chunk_size: int = 0
    dropout: float = 0.1
    predictor: str = "stateless"  # "stateless" | "lstm"
    predictor_dim: int = 0
    joiner_dim: int = 0
    ctc_weight: float = 0.0
