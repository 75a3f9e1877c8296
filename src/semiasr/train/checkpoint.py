"""Checkpoints: atomic writes, safe loads, keep-last-K plus best, and checkpoint averaging.

A checkpoint is a ``dict`` of tensors and plain containers (``format``, ``step``, ``epoch``,
``model``, ``optimizer``, ``scheduler``, ``trainer``, ``ranks``), serialised with ``torch.save``
into memory and written with :func:`semiasr.rundir.atomic_write_bytes` (temporary file, fsync,
rename): a crash leaves the old file or the new one. Loading uses ``torch.load(weights_only=True)``,
which refuses any pickled object other than tensors and primitive containers, so a checkpoint can
never run code.

Averaging (as in "Attention Is All You Need", 2017, and most ASR recipes since) takes the
element-wise mean θ̄ = (1/N) Σ_n θ_n of the model weights of the last N checkpoints, accumulated in
float64."""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from semiasr.errors import CheckpointError
from semiasr.rundir import atomic_write_bytes

__all__ = [
    "FORMAT",
    "CheckpointManager",
    "average_checkpoints",
    "checkpoint_to_bytes",
    "load_checkpoint",
    "load_model_state",
    "model_state_of",
    "save_checkpoint",
]

FORMAT = "semiasr-checkpoint-v1"
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")


def checkpoint_to_bytes(state: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    return buf.getvalue()


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    """Serialise ``state`` and write it atomically to ``path``."""
    atomic_write_bytes(path, checkpoint_to_bytes(state))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU with ``weights_only=True``; any failure is a
    CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain containers; it was not "
            f"loaded, since loading it could run code ({str(e).splitlines()[0]})"
        ) from e
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} cannot be read: {e}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict")
    return state


def model_state_of(checkpoint: Mapping[str, Any], source: str = "checkpoint") -> dict[str, Tensor]:
    """The model weights of a trainer checkpoint, or the checkpoint itself if it is a bare state
    dict."""
    if "model" in checkpoint and isinstance(checkpoint["model"], Mapping):
        state = checkpoint["model"]
    else:
        state = checkpoint
    if not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{source} holds no model weights (no 'model' dict of tensors)")
    return dict(state)


def _listing(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def load_model_state(
    model: nn.Module, state: Mapping[str, Tensor], source: str = "checkpoint"
) -> None:
    """Copy ``state`` into ``model``, or raise CheckpointError naming every key that does not
    fit."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in state
        and isinstance(v, Tensor)  # a module's extra state (``_extra_state``) is not a tensor
        and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if shapes:
        problems.append(f"shape mismatches: {_listing(shapes)}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit the model {type(model).__name__}: " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def average_checkpoints(paths: Sequence[str | Path]) -> dict[str, Tensor]:
    """The element-wise mean of the model weights in ``paths`` (float64 sums, cast back); integer
    buffers (step counters) are taken from the last checkpoint."""
    if not paths:
        raise CheckpointError("average_checkpoints needs at least one checkpoint")
    states = [model_state_of(load_checkpoint(p), source=str(p)) for p in paths]
    first, last = states[0], states[-1]
    for p, s in zip(paths[1:], states[1:]):
        if s.keys() != first.keys():
            diff = sorted(set(s) ^ set(first))
            raise CheckpointError(
                f"cannot average {p} with {paths[0]}: keys differ ({_listing(diff)})"
            )
        bad = [k for k in first if s[k].shape != first[k].shape]
        if bad:
            raise CheckpointError(f"cannot average {p} with {paths[0]}: shapes of {_listing(bad)}")
    out: dict[str, Tensor] = {}
    for key, ref in last.items():
        if ref.is_floating_point() or ref.is_complex():
            acc = sum(s[key].to(torch.float64) for s in states)
            out[key] = (acc / len(states)).to(ref.dtype)
        else:
            out[key] = ref.clone()
    return out


class CheckpointManager:
    """The ``checkpoints/`` folder of a run: ``step-N.pt`` (the last ``keep_last`` kept),
    ``best.pt``
    and ``averaged.pt``."""

    def __init__(self, directory: str | Path, keep_last: int):
        self.directory = Path(directory)
        self.keep_last = max(1, int(keep_last))

    @property
    def best_path(self) -> Path:
        return self.directory / "best.pt"

    @property
    def averaged_path(self) -> Path:
        return self.directory / "averaged.pt"

    def step_path(self, step: int) -> Path:
        return self.directory / f"step-{step}.pt"

    def steps(self) -> list[tuple[int, Path]]:
        """``(step, path)`` of every step checkpoint, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for p in self.directory.iterdir():
            m = _STEP_FILE.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
        return sorted(found)

    def latest(self) -> Path | None:
        found = self.steps()
        return found[-1][1] if found else None

    def write_step(self, step: int, data: bytes) -> Path:
        path = self.step_path(step)
        atomic_write_bytes(path, data)
        self.prune()
        return path

    def write_best(self, data: bytes) -> Path:
        atomic_write_bytes(self.best_path, data)
        return self.best_path

    def prune(self) -> list[Path]:
        """Delete all but the newest ``keep_last`` step checkpoints; return what was deleted."""
        old = [p for _, p in self.steps()[: -self.keep_last]]
        for p in old:
            p.unlink(missing_ok=True)
        return old

    def remove_temporaries(self) -> list[Path]:
        """Delete half-written ``.NAME.*.tmp`` files that a killed process left behind."""
        if not self.directory.is_dir():
            return []
        tmp = [
            p
            for p in self.directory.iterdir()
            if p.name.startswith(".") and p.name.endswith(".tmp")
        ]
        for p in tmp:
            p.unlink(missing_ok=True)
        return tmp
