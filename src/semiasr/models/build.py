"""Build a model from its config: ``build_model(ModelConfig(kind="transducer", preset="s"),
vocab_size)``."""

from __future__ import annotations

from torch import nn

from semiasr.errors import ConfigError
from semiasr.models.config import ModelConfig, resolve_model_config
from semiasr.models.ctc import CTCModel
from semiasr.models.transducer import Transducer
from semiasr.nn import (
    ConformerConfig,
    ConformerEncoder,
    CTCHead,
    Joiner,
    LSTMPredictor,
    StatelessPredictor,
)

__all__ = ["build_encoder", "build_model", "count_parameters"]


def build_encoder(cfg: ModelConfig, feat_dim: int = 80) -> ConformerEncoder:
    """The Conformer encoder of a resolved config."""
    return ConformerEncoder(
        ConformerConfig(
            feat_dim=feat_dim,
            d_model=cfg.d_model,
            num_layers=cfg.num_layers,
            num_heads=cfg.num_heads,
            ff_mult=cfg.ff_mult,
            conv_kernel=cfg.conv_kernel,
            subsampling=cfg.subsampling,
            subsampling_kind=cfg.subsampling_kind,
            subsampling_channels=cfg.subsampling_channels,
            causal=cfg.causal,
            chunk_size=cfg.chunk_size,
            left_chunks=cfg.left_chunks,
            dropout=cfg.dropout,
        )
    )


def _predictor(cfg: ModelConfig, vocab_size: int) -> nn.Module:
    if cfg.predictor == "lstm":
        return LSTMPredictor(vocab_size, cfg.predictor_dim, dropout=cfg.dropout)
    return StatelessPredictor(vocab_size, cfg.predictor_dim)


def build_model(
    model_cfg: ModelConfig, vocab_size: int, feat_dim: int = 80
) -> Transducer | CTCModel:
    """A freshly initialised :class:`Transducer` or :class:`CTCModel` (``model_cfg.kind``)."""
    if vocab_size < 2:
        raise ConfigError(f"vocab_size must be >= 2 (blank + a symbol), got {vocab_size}")
    cfg = resolve_model_config(model_cfg)
    encoder = build_encoder(cfg, feat_dim)
    if cfg.kind == "ctc":
        return CTCModel(encoder, CTCHead(cfg.d_model, vocab_size))
    predictor = _predictor(cfg, vocab_size)
    joiner = Joiner(cfg.d_model, cfg.predictor_dim, cfg.joiner_dim, vocab_size)
    ctc_head = CTCHead(cfg.d_model, vocab_size) if cfg.ctc_weight > 0 else None
    return Transducer(encoder, predictor, joiner, ctc_head, cfg.ctc_weight)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
