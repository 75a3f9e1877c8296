"""The CTC head: encoder frames (B, T, D) → log-probabilities (B, T, V), blank = id 0: float32 for
half-precision (bf16 / fp16) activations, else the activations' own dtype (float64 stays float64).

"Connectionist Temporal Classification" (Graves et al., 2006): a linear layer and a log-softmax.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["CTCHead"]


class CTCHead(nn.Module):
    """(B, T, D) → (B, T, V) log-probabilities."""

    def __init__(self, dim: int, vocab_size: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(dim, vocab_size)

    def forward(self, frames: Tensor) -> Tensor:
        logits = self.output(self.dropout(frames))
        if torch.finfo(logits.dtype).bits < 32:
            logits = logits.float()
        return torch.log_softmax(logits, dim=-1)
