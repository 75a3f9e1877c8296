"""Where and how a run computes: device choice, seeding, bf16 autocast, and the random-number state.

``rng_state()`` captures every generator a training step may draw from — Python's ``random``,
NumPy's global generator, torch's CPU generator and each CUDA device's — as tensors and plain lists,
so that a checkpoint holding it still loads with ``torch.load(weights_only=True)``;
``set_rng_state`` puts it back."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semiasr.errors import ConfigError

__all__ = [
    "autocast",
    "cpu_has_native_bf16",
    "resolve_device",
    "resolve_precision",
    "rng_state",
    "set_rng_state",
    "set_seed",
]

PRECISIONS = ("auto", "fp32", "bf16")


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (the global generator is what we seed)
    torch.manual_seed(seed)


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` → ``cuda:LOCAL_RANK`` when CUDA is there, else ``cpu``; ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"`` as given, checked against what this machine has."""
    name = str(name).strip().lower()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(
            f"device '{name}' is not a device; use auto, cpu, cuda or cuda:N", key="device"
        ) from e
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ConfigError(f"device '{name}' is not supported; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' was asked for but CUDA is not available", key="device")
    if device.index is None:
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} GPU(s)",
            key="device",
        )
    return device


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX), where bf16 autocast
    pays."""
    try:
        flags = Path(cpuinfo).read_text(errors="ignore").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _bf16_autocast_works(device: torch.device) -> bool:
    """Run one tiny matmul under bf16 autocast on ``device``; False if autocast is not there."""
    try:
        x = torch.ones(2, 2, device=device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            y = x @ x
        return y.dtype == torch.bfloat16
    except (RuntimeError, ValueError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"fp32"`` or ``"bf16"``: what the run will compute in on ``device``.

    "auto" picks bf16 on a CUDA device that supports it and on a CPU with native bf16 (AMX /
    AVX512-BF16); "bf16" raises :class:`ConfigError` where bf16 autocast does not run at all.
    """
    if precision not in PRECISIONS:
        raise ConfigError(
            f"train.precision must be one of {', '.join(PRECISIONS)}, got '{precision}'",
            key="train.precision",
        )
    if precision == "fp32":
        return "fp32"
    works = _bf16_autocast_works(device)
    if precision == "bf16":
        if not works:
            raise ConfigError(
                f"train.precision=bf16 but bf16 autocast does not run on {device}",
                key="train.precision",
            )
        return "bf16"
    if device.type == "cuda":
        native = works and torch.cuda.is_bf16_supported()
    else:
        native = works and cpu_has_native_bf16()
    return "bf16" if native else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op context for fp32)."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def flush_denormal_enabled() -> bool:
    """Whether this thread's CPU flushes subnormal floats to zero (``torch.set_flush_denormal``,
    which PyTorch lets one set but not read): the smallest subnormal float32, made from its bits,
    doubled — zero when subnormal results (or inputs) are flushed."""
    tiny = torch.tensor([1], dtype=torch.int32).view(torch.float32)
    return bool((tiny * 2.0).item() == 0.0)


@contextlib.contextmanager
def flush_denormal(enabled: bool = True) -> Iterator[None]:
    """Flush subnormal floats to zero (``enabled``) or keep them inside the block; the thread's
    previous mode afterwards."""
    before = flush_denormal_enabled()
    torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def rng_state() -> dict[str, Any]:
    """Every global generator's state, as tensors and plain Python values
    (weights_only-loadable)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, float(cached)))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
