"""Reading and replacing the main tensor of a module's output, whatever its container.

Blocks return a tensor (B, T, D), a tuple whose first item is that tensor (Hugging Face layers), or
an object with a ``frames`` field (our ``EncoderOutput``); adaptation changes only that tensor.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import Tensor

from semiasr.errors import SemiasrError

__all__ = ["main_tensor", "replace_main_tensor"]


def main_tensor(output: Any) -> Tensor:
    """The (B, T, D) tensor inside ``output``."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    frames = getattr(output, "frames", None)
    if isinstance(frames, Tensor):
        return frames
    hidden = getattr(output, "last_hidden_state", None)
    if isinstance(hidden, Tensor):
        return hidden
    raise SemiasrError(
        f"cannot find the main tensor in a module output of type {type(output).__name__}; "
        "expected a Tensor, a tuple starting with one, or an object with .frames"
    )


def replace_main_tensor(output: Any, new: Tensor) -> Any:
    """``output`` with its main tensor replaced by ``new`` (same container type)."""
    if isinstance(output, Tensor):
        return new
    if isinstance(output, tuple) and hasattr(output, "_replace"):
        return output._replace(**{output._fields[0]: new})
    if isinstance(output, (tuple, list)):
        return type(output)([new, *output[1:]])
    for field in ("frames", "last_hidden_state"):
        if isinstance(getattr(output, field, None), Tensor):
            if dataclasses.is_dataclass(output):
                return dataclasses.replace(output, **{field: new})
            setattr(output, field, new)
            return output
    raise SemiasrError(f"cannot replace the main tensor of a {type(output).__name__}")
