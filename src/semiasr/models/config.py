"""Configs of the assembled models, and the size presets xs, s, m, l."""

from __future__ import annotations

from dataclasses import dataclass, replace

from semiasr.errors import ConfigError

__all__ = ["PRESETS", "ModelConfig", "resolve_model_config"]


@dataclass
class ModelConfig:
    """A Conformer encoder with a transducer or CTC head. ``preset`` (xs, s, m, l) fills the sizes
    that are left at ``0``; explicit values win. ``init_encoder``: a checkpoint file or run
    directory whose ``encoder.*`` weights initialise the encoder of a new training run (e.g. a
    ``semiasr pretrain`` run); empty: random initialisation."""

    kind: str = "transducer"  # "transducer" | "ctc"
    preset: str = "xs"
    d_model: int = 0
    num_layers: int = 0
    num_heads: int = 0
    ff_mult: int = 4
    conv_kernel: int = 15
    subsampling: int = 4
    subsampling_kind: str = "conv2d"  # "conv2d" | "dw_striding" (depthwise-separable, cheaper)
    subsampling_channels: int = 0  # width of the front-end convs; 0 means d_model
    causal: bool = False
    chunk_size: int = 0  # causal only: attention chunk in encoder frames; 0 means 1 (fully causal)
    left_chunks: int = -1  # causal only: chunks of left context each chunk sees; -1 means all
    dropout: float = 0.1
    predictor: str = "stateless"  # "stateless" | "lstm"
    predictor_dim: int = 0
    joiner_dim: int = 0
    ctc_weight: float = 0.0
    init_encoder: str = ""


# Sizes of each preset; parameter counts measured in docs/models.md.
PRESETS: dict[str, dict[str, int]] = {
    "xs": {
        "d_model": 128,
        "num_layers": 4,
        "num_heads": 4,
        "predictor_dim": 128,
        "joiner_dim": 128,
    },
    "s": {"d_model": 256, "num_layers": 6, "num_heads": 4, "predictor_dim": 256, "joiner_dim": 256},
    "m": {"d_model": 384, "num_layers": 8, "num_heads": 6, "predictor_dim": 384, "joiner_dim": 384},
    "l": {
        "d_model": 512,
        "num_layers": 18,
        "num_heads": 8,
        "predictor_dim": 512,
        "joiner_dim": 512,
    },
}
_KINDS = ("transducer", "ctc")
_PREDICTORS = ("stateless", "lstm")


def _check_choice(key: str, value: str, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise ConfigError(
            f"model.{key} is '{value}'; choose one of {', '.join(choices)}", key=f"model.{key}"
        )


def resolve_model_config(cfg: ModelConfig) -> ModelConfig:
    """A copy of ``cfg`` with the preset's sizes filled in where ``cfg`` leaves them at 0;
    validated."""
    _check_choice("kind", cfg.kind, _KINDS)
    _check_choice("preset", cfg.preset, list(PRESETS))
    _check_choice("predictor", cfg.predictor, _PREDICTORS)
    sizes = {k: getattr(cfg, k) or v for k, v in PRESETS[cfg.preset].items()}
    out = replace(cfg, **sizes)
    if out.d_model % out.num_heads or out.d_model % 2:
        raise ConfigError(
            f"model.d_model ({out.d_model}) must be even and divisible by model.num_heads "
            f"({out.num_heads})",
            key="model.d_model",
        )
    if not 0.0 <= out.ctc_weight:
        raise ConfigError(
            f"model.ctc_weight must be >= 0, got {out.ctc_weight}", key="model.ctc_weight"
        )
    if out.subsampling not in (4, 8):
        raise ConfigError(
            f"model.subsampling must be 4 or 8, got {out.subsampling}", key="model.subsampling"
        )
    if not out.causal and out.conv_kernel % 2 == 0:
        raise ConfigError(
            f"model.conv_kernel must be odd for a non-causal encoder, got {out.conv_kernel}",
            key="model.conv_kernel",
        )
    return out
