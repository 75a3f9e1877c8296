"""The transducer joiner: z(t, u) = W_out · tanh(W_enc f_t + W_pred g_u) — logits over the
vocabulary.

"Sequence Transduction with Recurrent Neural Networks" (Graves, 2012), in the additive form used by
icefall/k2 and ESPnet. ``forward`` broadcasts encoder frames (B, T, D_enc) against prediction
outputs (B, U+1, D_pred) into the full lattice of logits (B, T, U+1, V). Decoding projects each side
once (:meth:`Joiner.project_encoder`, :meth:`Joiner.project_predictor`) and calls
:meth:`Joiner.join` on any two broadcastable projected tensors (…, J) → (…, V).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["Joiner"]


class Joiner(nn.Module):
    """enc (B, T, D_enc), pred (B, U+1, D_pred) → logits (B, T, U+1, V) (unnormalised)."""

    def __init__(self, enc_dim: int, pred_dim: int, joiner_dim: int, vocab_size: int):
        super().__init__()
        self.enc_proj = nn.Linear(enc_dim, joiner_dim)
        self.pred_proj = nn.Linear(pred_dim, joiner_dim)
        self.output = nn.Linear(joiner_dim, vocab_size)

    def project_encoder(self, enc: Tensor) -> Tensor:
        return self.enc_proj(enc)

    def project_predictor(self, pred: Tensor) -> Tensor:
        return self.pred_proj(pred)

    def join(self, enc_proj: Tensor, pred_proj: Tensor) -> Tensor:
        """Broadcastable projected inputs (…, J) → logits (…, V)."""
        return self.output(torch.tanh(enc_proj + pred_proj))

    def forward(self, enc: Tensor, pred: Tensor) -> Tensor:
        return self.join(self.enc_proj(enc)[:, :, None], self.pred_proj(pred)[:, None])
