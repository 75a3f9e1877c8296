"""The Conformer transducer (RNN-T) with an optional auxiliary CTC head.

"Sequence Transduction with Recurrent Neural Networks" (Graves, 2012) with a Conformer encoder
("Conformer: Convolution-augmented Transformer for Speech Recognition", Gulati et al., 2020).

    features (B, T, F) ─► encoder ─► f (B, T', D) ───────┐
    tokens (B, U) ─► [blank] + tokens ─► predictor ─► g (B, U+1, P) ─┴► joiner ─► (B, T', U+1, V)
    f ─► CTC head (optional) ─► log-probs (B, T', V)

``forward`` returns the whole lattice of logits for the loss (objectives call the model, so DDP sees
a forward); ``transcribe`` searches it (greedy or modified beam search).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semiasr.decoding import Decoded, transducer_beam_search, transducer_greedy_search
from semiasr.errors import ConfigError
from semiasr.nn import ConformerEncoder, CTCHead, EncoderOutput, Joiner

if TYPE_CHECKING:
    from semiasr.lm import ShallowFusion

__all__ = ["Transducer", "TransducerOutput"]


@dataclass
class TransducerOutput:
    """logits (B, T', U+1, V); lengths (B,) of the encoder frames; ctc_log_probs (B, T', V) or
    None."""

    logits: Tensor
    lengths: Tensor
    ctc_log_probs: Tensor | None
    encoder: EncoderOutput


class Transducer(nn.Module):
    """Encoder + prediction network + joiner (+ CTC head when ``ctc_weight > 0``). Blank is id 0."""

    blank = 0

    def __init__(
        self,
        encoder: ConformerEncoder,
        predictor: nn.Module,
        joiner: Joiner,
        ctc_head: CTCHead | None = None,
        ctc_weight: float = 0.0,
    ):
        super().__init__()
        if ctc_weight > 0 and ctc_head is None:
            raise ConfigError("ctc_weight > 0 needs a CTC head", key="model.ctc_weight")
        self.encoder = encoder
        self.predictor = predictor
        self.joiner = joiner
        self.ctc_head = ctc_head
        self.ctc_weight = ctc_weight

    @property
    def vocab_size(self) -> int:
        return self.joiner.output.out_features

    def encode(
        self, features: Tensor, lengths: Tensor, return_hidden: bool = False
    ) -> EncoderOutput:
        return self.encoder(features, lengths, return_hidden)

    def predict(self, tokens: Tensor) -> Tensor:
        """tokens (B, U) → prediction outputs (B, U+1, P) for the contexts ∅, y_1, …, y_1…y_U."""
        return self.predictor(F.pad(tokens, (1, 0), value=self.blank))

    def forward(
        self,
        features: Tensor,
        lengths: Tensor,
        tokens: Tensor,
        token_lengths: Tensor | None = None,
        return_hidden: bool = False,
    ) -> TransducerOutput:
        enc = self.encode(features, lengths, return_hidden)
        logits = self.joiner(enc.frames, self.predict(tokens))
        ctc = self.ctc_head(enc.frames) if self.ctc_head is not None else None
        return TransducerOutput(logits, enc.lengths, ctc, enc)

    @torch.no_grad()
    def decode(
        self,
        enc: EncoderOutput,
        method: str = "greedy",
        beam: int = 4,
        max_symbols_per_frame: int = 3,
        fusion: ShallowFusion | None = None,
    ) -> Decoded:
        """Search encoder output: ``method`` "greedy" or "beam" (beam search of width ``beam``;
        ``fusion``: shallow fusion with a language model, beam search only)."""
        if method == "greedy":
            return transducer_greedy_search(
                self.predictor,
                self.joiner,
                enc.frames,
                enc.lengths,
                max_symbols_per_frame,
                self.blank,
            )
        if method == "beam":
            return transducer_beam_search(
                self.predictor,
                self.joiner,
                enc.frames,
                enc.lengths,
                beam,
                self.blank,
                max_symbols_per_frame,
                fusion,
            )
        raise ConfigError(f"decoding method '{method}' is not 'greedy' or 'beam'", key="method")

    @torch.no_grad()
    def transcribe(
        self,
        features: Tensor,
        lengths: Tensor,
        method: str = "greedy",
        beam: int = 4,
        fusion: ShallowFusion | None = None,
    ) -> list[list[int]]:
        """Token ids per utterance. Call ``model.eval()`` first (dropout stays as the mode says)."""
        return self.decode(self.encode(features, lengths), method, beam, fusion=fusion).tokens
