"""The config of parameter-efficient adaptation (``prepare_adaptation``), OmegaConf-friendly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

METHODS = ("full", "decoder", "adapters", "lora", "mda", "hff", "hff+adapters")


@dataclass
class AdaptConfig:
    """How a trained model is adapted and which of its parameters train.

    ``method``: full (every parameter), decoder (everything outside the encoder), adapters, lora,
    mda (per-domain adapters and FFN copies), hff (fusion of the frozen encoder's layers),
    hff+adapters. ``encoder`` names the encoder submodule ("" = the whole model); ``layers`` globs
    its blocks, relative to the encoder. ``train_decoder``: whether everything outside the encoder
    trains too; None means the method's default (yes for adapters, lora, hff, hff+adapters; no for
    mda, whose shared parts must stay frozen). ``also_train``: more parameter-name globs to train.
    """

    method: str = "adapters"
    encoder: str = "encoder"
    layers: str = "layers.*"
    train_decoder: Optional[bool] = None  # noqa: UP045 - OmegaConf reads Optional, not `X | None`
    also_train: list[str] = field(default_factory=list)
    # residual adapters (adapters, mda, hff+adapters)
    adapter_positions: list[str] = field(default_factory=lambda: ["output"])
    # more modules, relative to the encoder, with an adapter on their output (e.g. the front end,
    # "subsampling": where channel and noise shifts enter); per-domain adapters under mda
    adapter_extra: list[str] = field(default_factory=list)
    bottleneck: int = 32
    adapter_act: str = "relu"
    adapter_dropout: float = 0.0
    # a depthwise convolution over time inside each adapter's bottleneck: its kernel (0 = none;
    # odd for a full-context encoder), identity at the start; causal (left context only) when the
    # encoder is; only at positions whose forward takes a pad_mask (block outputs, conv modules)
    adapter_conv_kernel: int = 0
    # adapters and hff+adapters (MDA's per-domain adapters are serial): "serial" on each position's
    # output; "parallel" beside the position, reading its input, times adapter_scale
    adapter_mode: str = "serial"
    adapter_scale: float = 1.0
    # LoRA: globs of nn.Linear names relative to each block
    lora_targets: list[str] = field(default_factory=lambda: ["attn.**", "ff1.**", "ff2.**"])
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.0
    # MDA: domains 0 (source, the base model) … num_domains − 1; routed submodules of each block
    num_domains: int = 2
    domain_modules: list[str] = field(default_factory=lambda: ["ff1", "ff2"])
    # HFF
    fusion: str = "hierarchical"  # "weighted" | "hierarchical"
    fusion_group: int = 2
