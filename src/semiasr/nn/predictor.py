"""Transducer prediction networks: the label context ``y_1 … y_u`` → a vector ``g_u`` for the
joiner.

Two kinds, one interface. Training: ``forward(tokens)`` on (B, U+1) ids that start with the blank
(id 0, the start symbol) → (B, U+1, D). Decoding, one step per emitted token, batched over
hypotheses: ``init_state(n)``, ``step(tokens (N,), state) → (out (N, D), state)``,
``select_state(state, index)`` and ``where_state(mask, new, old)``. Feeding ``forward``'s inputs one
at a time through ``step`` gives ``forward``'s outputs.

* :class:`StatelessPredictor` — embedding + a 1-D convolution over the last ``context_size`` tokens,
  then ReLU: "RNN-Transducer with Stateless Prediction Network" (Ghodsi et al., 2020), as in
  icefall's stateless decoder. Its state is the last ``context_size - 1`` tokens, (N, context_size -
  1).
* :class:`LSTMPredictor` — embedding + LSTM ("Sequence Transduction with Recurrent Neural Networks",
  Graves, 2012). Its state is ``(h, c)``, each (num_layers, N, D).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LSTMPredictor", "StatelessPredictor"]


class StatelessPredictor(nn.Module):
    """(B, U+1) ids → (B, U+1, D); output ``u`` sees tokens ``u - context_size + 1 … u`` (blank
    before 0)."""

    def __init__(self, vocab_size: int, dim: int, context_size: int = 2, blank: int = 0):
        super().__init__()
        if context_size < 1:
            raise ValueError(f"context_size must be >= 1, got {context_size}")
        self.blank = blank
        self.context_size = context_size
        self.output_dim = dim
        self.embedding = nn.Embedding(vocab_size, dim)
        groups = dim // 4 if dim % 4 == 0 else 1
        self.conv = nn.Conv1d(dim, dim, context_size, groups=groups, bias=False)

    def _context_output(self, padded: Tensor) -> Tensor:
        """(B, L + context_size - 1) ids, left-padded → (B, L, D)."""
        e = self.embedding(padded).transpose(1, 2)  # (B, D, L + c - 1)
        return F.relu(self.conv(e).transpose(1, 2))

    def forward(self, tokens: Tensor) -> Tensor:
        return self._context_output(F.pad(tokens, (self.context_size - 1, 0), value=self.blank))

    def init_state(self, n: int, device: torch.device | None = None) -> Tensor:
        return torch.full((n, self.context_size - 1), self.blank, dtype=torch.long, device=device)

    def step(self, tokens: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        context = torch.cat([state, tokens[:, None]], dim=1)  # (N, context_size)
        return self._context_output(context)[:, 0], context[:, 1:]

    @staticmethod
    def select_state(state: Tensor, index: Tensor) -> Tensor:
        return state[index]

    @staticmethod
    def where_state(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
        return torch.where(mask[:, None], new, old)


class LSTMPredictor(nn.Module):
    """(B, U+1) ids → (B, U+1, D): embedding → dropout → LSTM."""

    def __init__(
        self, vocab_size: int, dim: int, num_layers: int = 1, dropout: float = 0.1, blank: int = 0
    ):
        super().__init__()
        self.blank = blank
        self.output_dim = dim
        self.embedding = nn.Embedding(vocab_size, dim)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(dim, dim, num_layers=num_layers, batch_first=True)

    def forward(self, tokens: Tensor) -> Tensor:
        out, _ = self.lstm(self.dropout(self.embedding(tokens)))
        return out

    def init_state(self, n: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        shape = (self.lstm.num_layers, n, self.lstm.hidden_size)
        dtype = self.embedding.weight.dtype
        return torch.zeros(shape, device=device, dtype=dtype), torch.zeros(
            shape, device=device, dtype=dtype
        )

    def step(
        self, tokens: Tensor, state: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        out, new_state = self.lstm(self.dropout(self.embedding(tokens[:, None])), state)
        return out[:, 0], new_state

    @staticmethod
    def select_state(state: tuple[Tensor, Tensor], index: Tensor) -> tuple[Tensor, Tensor]:
        return state[0][:, index], state[1][:, index]

    @staticmethod
    def where_state(
        mask: Tensor, new: tuple[Tensor, Tensor], old: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, Tensor]:
        m = mask[None, :, None]
        return torch.where(m, new[0], old[0]), torch.where(m, new[1], old[1])
