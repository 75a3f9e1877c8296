"""Multi-head self-attention with Transformer-XL relative positional encoding, as in the Conformer.

From "Transformer-XL: Attentive Language Models Beyond a Fixed-Length Context" (Dai et al., 2019),
used by "Conformer: Convolution-augmented Transformer for Speech Recognition" (Gulati et al., 2020).
For a query at frame ``i`` and a key at frame ``j``, with head dimension ``d_k``,

    score(i, j) = [ (q_i + u)·k_j  +  (q_i + v)·W_pos p(i - j) ] / sqrt(d_k)

where ``p(r)`` is the sinusoidal encoding of the relative distance ``r`` and ``u``, ``v`` are learnt
per-head biases. The scores depend on positions only through ``i - j``, so a frame's output does not
depend on how much padding follows it, and chunked (streaming) masks need no special positional
handling. We chose this over rotary embeddings because it is what the Conformer paper trains with.

Shapes: x (B, T, D); pos_emb (1, 2T - 1, D) holding ``p(T-1), p(T-2), …, p(-(T-1))``; mask (B, T, T)
bool, ``True`` where the key is visible.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["RelPositionMultiHeadAttention", "RelPositionalEncoding", "rel_shift"]


class RelPositionalEncoding(nn.Module):
    """Sinusoidal encodings of the relative distances ``T-1, …, 0, …, -(T-1)``: (1, 2T - 1, D)."""

    def __init__(self, d_model: int, dropout: float = 0.0):
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model must be even for sinusoidal encodings, got {d_model}")
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)

    def forward(self, num_frames: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """Computed in float32 (float64 for a float64 model: the angles reach T, where float32's
        sine has errors of about 1e-7 that also differ between CPU and CUDA), then cast."""
        work = torch.float64 if dtype == torch.float64 else torch.float32
        rel = torch.arange(num_frames - 1, -num_frames, -1, device=device, dtype=work)
        freq = torch.exp(
            torch.arange(0, self.d_model, 2, device=device, dtype=work)
            * (-math.log(10000.0) / self.d_model)
        )
        angle = rel[:, None] * freq[None, :]  # (2T-1, D/2)
        pe = torch.stack([angle.sin(), angle.cos()], dim=-1).reshape(1, -1, self.d_model)
        return self.dropout(pe.to(dtype))


def rel_shift(x: Tensor) -> Tensor:
    """(…, T, 2T - 1) scores indexed by relative position → (…, T, T) indexed by key.

    Column ``k`` of the input holds distance ``T - 1 - k``; output ``[i, j]`` is input ``[i, T - 1 -
    i + j]``.
    """
    t = x.shape[-2]
    x = x.contiguous()
    *lead, s_row, s_col = x.stride()
    return x.as_strided(
        (*x.shape[:-1], t),
        (*lead, s_row - s_col, s_col),
        storage_offset=x.storage_offset() + (t - 1) * s_col,
    )


class RelPositionMultiHeadAttention(nn.Module):
    """(B, T, D) → (B, T, D) self-attention with relative positions (see module docstring)."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.d_k = d_model // num_heads
        self.linear_q = nn.Linear(d_model, d_model)
        self.linear_k = nn.Linear(d_model, d_model)
        self.linear_v = nn.Linear(d_model, d_model)
        self.linear_pos = nn.Linear(d_model, d_model, bias=False)
        self.linear_out = nn.Linear(d_model, d_model)
        self.pos_bias_u = nn.Parameter(torch.empty(num_heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(num_heads, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: Tensor) -> Tensor:
        """(B, T, D) → (B, T, H, d_k)."""
        return x.view(x.shape[0], x.shape[1], self.num_heads, self.d_k)

    def forward(self, x: Tensor, pos_emb: Tensor, mask: Tensor | None = None) -> Tensor:
        q = self._heads(self.linear_q(x))  # (B, T, H, d_k)
        k = self._heads(self.linear_k(x)).transpose(1, 2)  # (B, H, T, d_k)
        v = self._heads(self.linear_v(x)).transpose(1, 2)
        p = self._heads(self.linear_pos(pos_emb)).transpose(1, 2)  # (1, H, 2T-1, d_k)
        # the content term, then in place (no product's backward reads its own output) + the
        # position term, / sqrt(d_k), masking: one (B, H, T, T) tensor instead of four
        scores = (q + self.pos_bias_u).transpose(1, 2) @ k.transpose(-2, -1)  # (B, H, T, T)
        scores.add_(rel_shift((q + self.pos_bias_v).transpose(1, 2) @ p.transpose(-2, -1)))
        scores.div_(math.sqrt(self.d_k))
        if mask is not None:
            scores.masked_fill_(~mask[:, None], torch.finfo(scores.dtype).min)
        weights = self.dropout(torch.softmax(scores, dim=-1))
        out = (weights @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return self.linear_out(out)
