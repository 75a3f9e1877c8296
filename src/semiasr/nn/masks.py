"""Boolean masks over frames: which frames are real, and which keys a query may attend to.

Every mask here is ``True`` where something is *allowed* (a valid frame, a visible key).

* :func:`padding_mask` — (B, T) from lengths (B,).
* :func:`chunk_attention_mask` — (T, T) for chunked streaming attention: frame ``i`` of chunk ``c(i)
  = i // chunk_size`` sees key ``j`` iff ``c(i) - left_chunks <= c(j) <= c(i)`` (all earlier chunks
  when ``left_chunks < 0``). ``chunk_size = 1`` with unlimited left context is ordinary causal
  attention.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["attention_mask", "chunk_attention_mask", "padding_mask"]


def padding_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(B, T) bool, ``True`` at frames ``t < lengths[b]``."""
    t = int(lengths.max()) if max_len is None else max_len
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


def chunk_attention_mask(
    num_frames: int, chunk_size: int, left_chunks: int = -1, device: torch.device | None = None
) -> Tensor:
    """(T, T) bool: query ``i`` may see key ``j`` (chunked causal attention; see module
    docstring)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    chunk = torch.arange(num_frames, device=device) // chunk_size
    query, key = chunk[:, None], chunk[None, :]
    allowed = key <= query
    if left_chunks >= 0:
        allowed &= key >= query - left_chunks
    return allowed


def attention_mask(pad_mask: Tensor, chunk_mask: Tensor | None = None) -> Tensor:
    """(B, T, T) bool: key ``j`` is a valid frame and (if chunked) visible from query ``i``."""
    mask = pad_mask[:, None, :].expand(-1, pad_mask.shape[1], -1)
    return mask if chunk_mask is None else mask & chunk_mask[None]
