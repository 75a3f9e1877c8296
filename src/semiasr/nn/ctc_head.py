"""The CTC head: encoder frames (B, T, D) → log-probabilities (B, T, V) (float32), blank = id 0.

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
        return torch.log_softmax(self.output(self.dropout(frames)).float(), dim=-1)
