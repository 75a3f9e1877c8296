"""Adaptation checkpoints: only the trained parts of a model, plus what they were trained on.

A checkpoint holds

* ``config``:    the AdaptConfig that ``prepare_adaptation`` applied (to rebuild the modules);
* ``structure``: [name, shape, dtype] of every base-model tensor (the model before adaptation);
* ``values``:    a SHA-256 digest of each frozen base parameter's bytes (the "fingerprint");
* ``tensors``:   every tensor that adaptation added, every base parameter that trained, and the base
  buffers (normalisation statistics may move while the rest is frozen; buffers are small).

``load_adaptation`` puts those tensors on top of a base model and refuses (CheckpointError, naming
the tensors that differ) a base model whose structure or frozen weights differ from the one the
adaptation was trained on. Files are read with ``torch.load(weights_only=True)`` and written
atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from semiasr.adapt.adapters import conv_adapter_causality
from semiasr.adapt.config import AdaptConfig
from semiasr.adapt.lora import lora_layers, merge_lora, unmerge_lora
from semiasr.adapt.names import adapt_state
from semiasr.errors import CheckpointError
from semiasr.rundir import atomic_write_bytes

__all__ = ["base_fingerprint", "load_adaptation", "save_adaptation", "tensor_digest"]

FORMAT = "semiasr.adaptation"
VERSION = 1


def tensor_digest(t: Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and raw bytes (first 16 hex digits)."""
    data = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    head = f"{t.dtype}:{tuple(t.shape)}:".encode()
    return hashlib.sha256(head + data).hexdigest()[:16]


def _adaptation_prefixes(model: nn.Module) -> list[str]:
    lora = [f"{name}.lora." for name in lora_layers(model)]
    return [f"{p}." for p in adapt_state(model).prefixes] + lora


def _base_state(model: nn.Module) -> dict[str, Tensor]:
    """The base model's tensors: the state dict less what adaptation added, with merged LoRA
    weights replaced by the weights they were merged into."""
    prefixes = _adaptation_prefixes(model)
    state = {
        k: v for k, v in model.state_dict().items() if not any(k.startswith(p) for p in prefixes)
    }
    for name, linear in lora_layers(model).items():
        if linear.lora.merged:
            state[f"{name}.weight"] = linear.lora.base_weight
    return state


def base_fingerprint(model: nn.Module) -> dict[str, Any]:
    """{"structure": [[name, shape, dtype], …], "values": {frozen param name: digest}}."""
    params = {n for n, p in model.named_parameters() if not p.requires_grad}
    base = _base_state(model)
    return {
        "structure": [[k, list(v.shape), str(v.dtype)] for k, v in base.items()],
        "values": {k: tensor_digest(v) for k, v in base.items() if k in params},
    }


def _trained_tensors(model: nn.Module) -> dict[str, Tensor]:
    base = _base_state(model)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n for n, _ in model.named_buffers()}
    return {
        k: v.detach().cpu().clone()
        for k, v in model.state_dict().items()
        if k not in base or k in trained or k in buffers
    }


def save_adaptation(
    path: str | Path, model: nn.Module, extra: dict[str, Any] | None = None
) -> None:
    """Write the trained parts of ``model`` (set up by ``prepare_adaptation``), its base model's
    fingerprint and its AdaptConfig to ``path``. ``extra``: plain values stored alongside."""
    config = adapt_state(model).config
    if config is None:
        raise CheckpointError(
            f"{type(model).__name__} was not set up by prepare_adaptation; nothing says how to "
            "rebuild its adaptation"
        )
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config,
        **base_fingerprint(model),
        "tensors": _trained_tensors(model),
        "extra": extra or {},
    }
    causal = {
        a.padding[1] == 0  # left context only
        for a in getattr(model, "adapters", {}).values()
        if getattr(a, "conv", None) is not None and a.conv.kernel_size[0] > 1
    }
    if len(causal) == 1:  # the adapters' convolutions follow their encoder's causality
        payload["encoder_causal"] = causal.pop()
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_adaptation(path: str | Path) -> dict[str, Any]:
    """The checkpoint's payload (tensors on CPU)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f"{path}: no such adaptation checkpoint") from e
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read the adaptation checkpoint ({e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a semiasr adaptation checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: format version {payload.get('version')}, want {VERSION}")
    return payload


def _few(items: list[str], n: int = 5) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _check_structure(path: str | Path, want: list, have: list) -> None:
    want_d = {name: (shape, dtype) for name, shape, dtype in want}
    have_d = {name: (shape, dtype) for name, shape, dtype in have}
    missing = [n for n in want_d if n not in have_d]
    extra = [n for n in have_d if n not in want_d]
    changed = [
        f"{n} {have_d[n][0]} {have_d[n][1]} (trained on {want_d[n][0]} {want_d[n][1]})"
        for n in want_d
        if n in have_d and have_d[n] != want_d[n]
    ]
    problems = [
        f"missing {_few(missing)}" if missing else "",
        f"unexpected {_few(extra)}" if extra else "",
        f"different shape/dtype: {_few(changed)}" if changed else "",
    ]
    if any(problems):
        detail = "; ".join(p for p in problems if p)
        raise CheckpointError(f"{path}: the base model does not fit this adaptation: {detail}")


def _check_values(path: str | Path, want: dict[str, str], base: dict[str, Tensor]) -> None:
    differ = [n for n, digest in want.items() if n in base and tensor_digest(base[n]) != digest]
    if differ:
        raise CheckpointError(
            f"{path}: the base model's weights differ from those the adaptation was trained on "
            f"({len(differ)} tensors: {_few(differ)})"
        )


def _check_config(path: str | Path, want: dict[str, Any], have: dict[str, Any]) -> None:
    """Options missing on one side (a checkpoint older than the option) count as their default."""
    defaults = dataclasses.asdict(AdaptConfig())
    want, have = {**defaults, **want}, {**defaults, **have}
    differ = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if differ:
        pairs = [f"{k}={have.get(k)!r} (checkpoint: {want.get(k)!r})" for k in differ]
        raise CheckpointError(f"{path}: the model is set up differently: {_few(pairs)}")


def _check_causal(
    path: str | Path, payload: dict[str, Any], model: nn.Module, config: dict[str, Any]
) -> None:
    """Convolution adapters trained in a causal encoder (left context only) compute something
    else in a full-context one, whose weights may be the same: refused either way."""
    want = payload.get("encoder_causal")
    if want is None:
        return
    full = {**dataclasses.asdict(AdaptConfig()), **config}
    have = conv_adapter_causality(model, full["encoder"], full["layers"], full["adapter_positions"])
    if have and have != {want}:
        kinds = {True: "causal (streaming)", False: "full-context"}
        found = " and ".join(kinds[c] for c in sorted(have))
        raise CheckpointError(
            f"{path}: its convolution adapters were trained in a {kinds[want]} encoder; this "
            f"model's encoder is {found}"
        )


def load_adaptation(path: str | Path, model: nn.Module) -> nn.Module:
    """Load an adaptation checkpoint on top of ``model``: a base model (it is then set up with the
    checkpoint's config) or one already set up with the same config. Returns ``model``. A base
    model the checkpoint does not fit is refused before anything is added to it; LoRA branches
    merged into their weights are unmerged for the load and merged again with the loaded ones."""
    from semiasr.adapt.prepare import prepare_adaptation

    payload = read_adaptation(path)
    config: dict[str, Any] = payload["config"]
    state = adapt_state(model)
    if state.config is not None:
        _check_config(path, config, state.config)
    # the base's parameter names do not change when adaptation is added, so both checks can run
    # on the model as it is, before it is touched
    _check_structure(path, payload["structure"], base_fingerprint(model)["structure"])
    _check_values(path, payload["values"], _base_state(model))
    _check_causal(path, payload, model, config)
    if state.config is None:
        prepare_adaptation(model, **config)
        _check_structure(path, payload["structure"], base_fingerprint(model)["structure"])
    merged = unmerge_lora(model)  # a merged weight holds the old branch: reload, then re-merge
    try:
        result = model.load_state_dict(payload["tensors"], strict=False)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: the trained tensors do not fit the model: {e}") from e
    finally:
        if merged:
            merge_lora(model)
    if result.unexpected_keys:
        raise CheckpointError(
            f"{path}: tensors the model does not have: {_few(list(result.unexpected_keys))}"
        )
    return model
