"""The Conformer encoder: subsampling, then blocks of FF/2 → self-attention → convolution → FF/2 →
LayerNorm.

"Conformer: Convolution-augmented Transformer for Speech Recognition" (Gulati et al., 2020). One
block:

    x = x + ½ FF1(x)
    x = x + MHSA(x)           relative positions (see :mod:`semiasr.nn.attention`)
    x = x + Conv(x)           pointwise → GLU → depthwise → LayerNorm → Swish → pointwise
    x = x + ½ FF2(x)
    y = LayerNorm(x)

Each branch (``ff1``, ``attn``, ``conv``, ``ff2``) is its own module that starts with a LayerNorm
and returns the branch output *before* the residual sum, so adapters and LoRA can wrap a branch or
its ``nn.Linear`` projections without touching this code. The conv module's norm is a LayerNorm, not
the paper's BatchNorm, so that a frame's output never depends on the other utterances in the batch,
nor on padding.

Streaming variant (``causal=True``): attention sees only its own chunk of ``chunk_size`` frames and
``left_chunks`` chunks before it (all of them when ``left_chunks < 0``; ``chunk_size = 0`` means 1,
i.e. fully causal), and the depthwise convolution is causal (left padding ``kernel - 1``). An output
frame then depends on no subsampled frame past the end ``e`` of its chunk, hence on no input frame
past ``factor·e + 2·factor - 2`` (the subsampling's receptive field, see
:mod:`semiasr.nn.subsampling`).

Shapes: features (B, T, F), lengths (B,) → :class:`EncoderOutput` with frames (B, T', D), lengths
(B,), and on request the list of every block's output (each (B, T', D)).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semiasr.nn.attention import RelPositionalEncoding, RelPositionMultiHeadAttention
from semiasr.nn.depthwise import DepthwiseConvTime
from semiasr.nn.masks import attention_mask, chunk_attention_mask, padding_mask
from semiasr.nn.subsampling import Conv2dSubsampling

__all__ = [
    "ConformerBlock",
    "ConformerConfig",
    "ConformerEncoder",
    "ConvModule",
    "EncoderOutput",
    "FeedForwardModule",
    "SelfAttentionModule",
]


@dataclass
class ConformerConfig:
    """Sizes of a :class:`ConformerEncoder`."""

    feat_dim: int = 80
    d_model: int = 144
    num_layers: int = 4
    num_heads: int = 4
    ff_mult: int = 4
    conv_kernel: int = 15
    subsampling: int = 4
    subsampling_channels: int = 0  # 0: d_model
    subsampling_kind: str = "conv2d"  # "conv2d" | "dw_striding"
    causal: bool = False
    chunk_size: int = 0  # causal only; 0 means 1 (frame-by-frame causal)
    left_chunks: int = -1  # causal only; < 0 means unlimited left context
    dropout: float = 0.1


@dataclass
class EncoderOutput:
    """frames (B, T', D) with zeros past ``lengths`` (B,).

    ``hidden``: each block's output (B, T', D), first block first, or None when not asked for. The
    last equals ``frames`` on valid frames; past ``lengths`` hidden states are not zeroed.
    """

    frames: Tensor
    lengths: Tensor
    hidden: list[Tensor] | None = None


class FeedForwardModule(nn.Module):
    """LayerNorm → Linear(D, ff_mult·D) → Swish → Dropout → Linear(ff_mult·D, D) → Dropout."""

    def __init__(self, d_model: int, ff_mult: int = 4, dropout: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, ff_mult * d_model)
        self.linear2 = nn.Linear(ff_mult * d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.dropout(F.silu(self.linear1(self.norm(x))))
        return self.dropout(self.linear2(h))


class SelfAttentionModule(nn.Module):
    """LayerNorm → relative-position MHSA → Dropout; (B, T, D) → (B, T, D)."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.1):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.mhsa = RelPositionMultiHeadAttention(d_model, num_heads, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos_emb: Tensor, mask: Tensor | None) -> Tensor:
        return self.dropout(self.mhsa(self.norm(x), pos_emb, mask))


class ConvModule(nn.Module):
    """LayerNorm → Linear(D, 2D) → GLU → depthwise Conv1d(k) → LayerNorm → Swish → Linear(D, D) →
    Dropout.

    Padded frames count as zeros in the depthwise convolution (it takes ``pad_mask``), so they
    cannot leak into valid frames. ``causal`` pads ``k - 1`` frames on the left only; otherwise
    ``(k - 1) / 2`` on each side (k odd).
    """

    def __init__(self, d_model: int, kernel: int = 15, dropout: float = 0.1, causal: bool = False):
        super().__init__()
        if not causal and kernel % 2 == 0:
            raise ValueError(f"a non-causal conv kernel must be odd, got {kernel}")
        self.norm = nn.LayerNorm(d_model)
        self.pointwise1 = nn.Linear(d_model, 2 * d_model)
        self.padding = (kernel - 1, 0) if causal else ((kernel - 1) // 2, (kernel - 1) // 2)
        self.depthwise = DepthwiseConvTime(d_model, kernel, self.padding)  # (B, T, D) in and out
        self.conv_norm = nn.LayerNorm(d_model)
        self.pointwise2 = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad_mask: Tensor | None = None) -> Tensor:
        h = F.glu(self.pointwise1(self.norm(x)), dim=-1)  # (B, T, D)
        # padded frames count as zeros: the depthwise kernels skip them (no masked copy of h and
        # no masking in the backward; bit for bit the sums of masking first, which the other
        # paths of semiasr.nn.depthwise do)
        h = self.depthwise(h, pad_mask=pad_mask)  # in the (B, T, D) layout
        h = F.silu(self.conv_norm(h))
        return self.dropout(self.pointwise2(h))


class ConformerBlock(nn.Module):
    """One Conformer block; submodules ``ff1``, ``attn``, ``conv``, ``ff2``, ``norm_out``.
    (B,T,D)→(B,T,D)."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        ff_mult: int = 4,
        conv_kernel: int = 15,
        dropout: float = 0.1,
        causal: bool = False,
    ):
        super().__init__()
        self.ff1 = FeedForwardModule(d_model, ff_mult, dropout)
        self.attn = SelfAttentionModule(d_model, num_heads, dropout)
        self.conv = ConvModule(d_model, conv_kernel, dropout, causal)
        self.ff2 = FeedForwardModule(d_model, ff_mult, dropout)
        self.norm_out = nn.LayerNorm(d_model)

    def forward(
        self, x: Tensor, pos_emb: Tensor, att_mask: Tensor | None, pad_mask: Tensor | None
    ) -> Tensor:
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(x, pos_emb, att_mask)
        x = x + self.conv(x, pad_mask)
        x = x + 0.5 * self.ff2(x)
        return self.norm_out(x)


class ConformerEncoder(nn.Module):
    """features (B, T, F), lengths (B,) → :class:`EncoderOutput` (frames (B, T', D))."""

    def __init__(self, cfg: ConformerConfig):
        super().__init__()
        self.cfg = cfg
        self.subsampling = Conv2dSubsampling(
            cfg.feat_dim,
            cfg.d_model,
            cfg.subsampling,
            cfg.subsampling_channels or None,
            cfg.subsampling_kind,
        )
        self.pos_enc = RelPositionalEncoding(cfg.d_model, cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(
            ConformerBlock(
                cfg.d_model, cfg.num_heads, cfg.ff_mult, cfg.conv_kernel, cfg.dropout, cfg.causal
            )
            for _ in range(cfg.num_layers)
        )

    @property
    def output_dim(self) -> int:
        return self.cfg.d_model

    def chunk_mask(self, num_frames: int, device: torch.device) -> Tensor | None:
        """(T', T') visibility of keys for the causal variant, None for full attention."""
        if not self.cfg.causal:
            return None
        return chunk_attention_mask(
            num_frames, max(self.cfg.chunk_size, 1), self.cfg.left_chunks, device
        )

    def forward(
        self, features: Tensor, lengths: Tensor, return_hidden: bool = False
    ) -> EncoderOutput:
        x, lengths = self.subsampling(features, lengths)
        x = self.dropout(x)
        t = x.shape[1]
        pad = padding_mask(lengths, t)
        att = attention_mask(pad, self.chunk_mask(t, x.device))
        pos_emb = self.pos_enc(t, x.device, x.dtype)
        hidden: list[Tensor] = []
        for layer in self.layers:
            x = layer(x, pos_emb, att, pad)
            if return_hidden:
                hidden.append(x)
        x = x.masked_fill(~pad[..., None], 0.0)
        return EncoderOutput(x, lengths, hidden if return_hidden else None)
