"""``prepare_adaptation``: set up a trained model for one adaptation method, modules and freezing.

| method       | modules added                                | what trains                    |
| ------------ | -------------------------------------------- | ------------------------------ |
| full         | —                                            | every parameter                |
| decoder      | —                                            | everything outside the encoder |
| adapters     | a residual adapter after each block position | adapters (+ decoder)           |
| lora         | LoRA on the blocks' attention/FFN Linears    | LoRA branches (+ decoder)      |
| mda          | per-domain adapters and FFN copies, d ≥ 1    | the target domains' modules    |
| hff          | fusion of the frozen encoder's layer outputs | fusion (+ decoder)             |
| hff+adapters | both                                         | fusion, adapters (+ decoder)   |

"(+ decoder)": unless ``train_decoder`` is False. ``also_train`` adds parameter globs. Norm layers
whose parameters are all frozen keep their running statistics (BatchNorm is held in eval mode).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from semiasr.adapt.adapters import add_adapters
from semiasr.adapt.config import METHODS, AdaptConfig
from semiasr.adapt.domains import add_domain_adapters, add_domain_modules
from semiasr.adapt.freeze import freeze_all_but
from semiasr.adapt.fusion import add_feature_fusion
from semiasr.adapt.lora import apply_lora
from semiasr.adapt.names import adapt_state, join_name
from semiasr.errors import ConfigError

__all__ = ["hold_frozen_norm_stats", "prepare_adaptation"]

_DECODER_DEFAULT = {"adapters": True, "lora": True, "mda": False, "hff": True, "hff+adapters": True}


def _config(method: str | AdaptConfig, opts: dict[str, Any]) -> AdaptConfig:
    if isinstance(method, AdaptConfig):
        return dataclasses.replace(method, **opts)
    names = {f.name for f in dataclasses.fields(AdaptConfig)}
    unknown = sorted(set(opts) - names)
    if unknown:
        raise ConfigError(f"unknown adaptation option(s) {unknown}", key=unknown[0])
    return AdaptConfig(method=method, **opts)


def _outside(model: nn.Module, encoder: str) -> list[str]:
    """Globs of the model's own top-level parts other than the encoder (the decoder side)."""
    adapted = set(adapt_state(model).prefixes)
    own = {
        n
        for n, m in model.named_children()
        if n not in adapted and next(m.parameters(), None) is not None
    }
    return sorted(own - {encoder.split(".")[0]}) if encoder else []


def _add_modules(model: nn.Module, cfg: AdaptConfig) -> list[str]:
    """Add the method's modules; return the parameter globs that train (besides the decoder)."""
    layers = join_name(cfg.encoder, cfg.layers)
    adapter_opts = {"act": cfg.adapter_act, "dropout": cfg.adapter_dropout}
    if cfg.method in ("adapters", "hff+adapters"):
        add_adapters(
            model,
            layers,
            cfg.adapter_positions,
            cfg.bottleneck,
            mode=cfg.adapter_mode,
            scale=cfg.adapter_scale,
            conv_kernel=cfg.adapter_conv_kernel,
            **adapter_opts,
        )
        for extra in cfg.adapter_extra:
            add_adapters(
                model, join_name(cfg.encoder, extra), ("output",), cfg.bottleneck, **adapter_opts
            )
    if cfg.method == "lora":
        targets = [join_name(layers, t) for t in cfg.lora_targets]
        apply_lora(model, targets, cfg.lora_rank, cfg.lora_alpha, cfg.lora_dropout)
        return ["**.lora"]
    if cfg.method == "mda":
        routed = [join_name(layers, m) for m in cfg.domain_modules]
        add_domain_modules(model, routed, cfg.num_domains)
        add_domain_adapters(
            model, layers, cfg.adapter_positions, cfg.bottleneck, cfg.num_domains, **adapter_opts
        )
        for extra in cfg.adapter_extra:
            add_domain_adapters(
                model, join_name(cfg.encoder, extra), ("output",), cfg.bottleneck,
                cfg.num_domains, **adapter_opts,
            )  # fmt: skip
        return ["adapters", "domain_modules"]
    if cfg.method in ("hff", "hff+adapters"):
        add_feature_fusion(model, cfg.encoder, cfg.layers, cfg.fusion, cfg.fusion_group)
        return ["fusion", "adapters"] if cfg.method == "hff+adapters" else ["fusion"]
    return ["adapters"] if cfg.method == "adapters" else []


def prepare_adaptation(
    model: nn.Module, method: str | AdaptConfig = "adapters", **opts: Any
) -> nn.Module:
    """Add the modules of ``method`` to ``model`` (in place) and freeze all parameters but the
    method's. ``opts`` are AdaptConfig fields. Returns ``model``."""
    cfg = _config(method, opts)
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown adaptation method {cfg.method!r}; choose one of {METHODS}")
    state = adapt_state(model)
    if state.config is not None:
        raise ConfigError(f"the model is already set up for {state.config['method']!r}")
    if cfg.method == "mda" and cfg.train_decoder:
        raise ConfigError(
            "mda trains each parameter on one domain only; the shared decoder cannot train",
            key="train_decoder",
        )
    if cfg.adapter_mode != "serial" and cfg.method not in ("adapters", "hff+adapters"):
        raise ConfigError(
            f"adapter_mode={cfg.adapter_mode!r} applies to the adapters and hff+adapters methods, "
            f"not {cfg.method!r} (per-domain adapters are serial)",
            key="adapter_mode",
        )
    if cfg.adapter_scale != 1.0 and cfg.adapter_mode != "parallel":
        raise ConfigError(
            f"adapter_scale={cfg.adapter_scale} scales parallel adapters only; "
            "set adapter_mode=parallel or leave the scale at 1",
            key="adapter_scale",
        )
    if cfg.adapter_conv_kernel and cfg.method not in ("adapters", "hff+adapters"):
        raise ConfigError(
            f"adapter_conv_kernel={cfg.adapter_conv_kernel} applies to the adapters and "
            f"hff+adapters methods, not {cfg.method!r} (per-domain adapters have no convolution)",
            key="adapter_conv_kernel",
        )
    if cfg.method == "decoder" and not cfg.encoder:
        raise ConfigError("method 'decoder' needs the encoder's name", key="encoder")
    if cfg.encoder and cfg.encoder not in dict(model.named_modules()):
        raise ConfigError(f"{type(model).__name__} has no submodule {cfg.encoder!r}", key="encoder")
    train = _add_modules(model, cfg)
    if cfg.method == "full":
        train = ["**"]
    decoder = cfg.method == "decoder" or (
        cfg.train_decoder if cfg.train_decoder is not None else _DECODER_DEFAULT.get(cfg.method)
    )
    if decoder:
        train += _outside(model, cfg.encoder)
    freeze_all_but(model, [*train, *cfg.also_train])
    if cfg.method != "full":
        hold_frozen_norm_stats(model)
    state.config = dataclasses.asdict(cfg)
    return model


def _keep_stats(module: nn.Module, args: Any) -> None:
    if not any(p.requires_grad for p in module.parameters()):
        module.train(False)


def hold_frozen_norm_stats(model: nn.Module) -> int:
    """Keep every BatchNorm whose parameters are all frozen in eval mode (running statistics
    fixed), also after ``model.train()``. Returns how many."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.register_forward_pre_hook(_keep_stats)
    return len(norms)
