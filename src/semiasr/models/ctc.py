"""The Conformer CTC model: encoder ─► linear ─► log-softmax (B, T', V), blank = id 0.

"Connectionist Temporal Classification" (Graves et al., 2006) over a Conformer encoder (Gulati et
al., 2020).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from semiasr.decoding import Decoded, ctc_greedy_search, ctc_prefix_beam_search
from semiasr.errors import ConfigError
from semiasr.functional import ctc_loss
from semiasr.nn import ConformerEncoder, CTCHead, EncoderOutput

if TYPE_CHECKING:
    from semiasr.lm import ShallowFusion

__all__ = ["CTCModel", "CTCOutput"]


@dataclass
class CTCOutput:
    """log_probs (B, T', V) (float32, or float64 for a float64 model); lengths (B,) of the encoder
    frames."""

    log_probs: Tensor
    lengths: Tensor
    encoder: EncoderOutput


class CTCModel(nn.Module):
    """Encoder + CTC head. Blank is id 0."""

    blank = 0

    def __init__(self, encoder: ConformerEncoder, ctc_head: CTCHead):
        super().__init__()
        self.encoder = encoder
        self.ctc_head = ctc_head

    @property
    def vocab_size(self) -> int:
        return self.ctc_head.output.out_features

    def encode(
        self, features: Tensor, lengths: Tensor, return_hidden: bool = False
    ) -> EncoderOutput:
        return self.encoder(features, lengths, return_hidden)

    def forward(
        self,
        features: Tensor,
        lengths: Tensor,
        tokens: Tensor | None = None,
        token_lengths: Tensor | None = None,
        return_hidden: bool = False,
    ) -> CTCOutput:
        """``tokens`` are accepted (and ignored) so that every model is called the same way."""
        enc = self.encode(features, lengths, return_hidden)
        return CTCOutput(self.ctc_head(enc.frames), enc.lengths, enc)

    def sequence_log_likelihood(
        self, enc: EncoderOutput, tokens: Tensor, token_lengths: Tensor
    ) -> Tensor:
        """(B,) log P(y | x) of each transcript ``tokens`` (B, U) given encoder outputs, summed
        over all alignments (the negative CTC loss; −inf where the frames cannot hold y)."""
        log_probs = self.ctc_head(enc.frames)
        nll = ctc_loss(
            log_probs, tokens, enc.lengths, token_lengths, blank=self.blank, reduction="none"
        )
        return -nll.double()

    @torch.no_grad()
    def decode(
        self,
        enc: EncoderOutput,
        method: str = "greedy",
        beam: int = 4,
        fusion: ShallowFusion | None = None,
    ) -> Decoded:
        """``method`` "greedy" (best path) or "beam" (prefix beam search of width ``beam``;
        ``fusion``: shallow fusion with a language model, beam search only)."""
        log_probs = self.ctc_head(enc.frames)
        if method == "greedy":
            return ctc_greedy_search(log_probs, enc.lengths, self.blank)
        if method == "beam":
            return ctc_prefix_beam_search(
                log_probs, enc.lengths, beam, self.blank, token_prune=beam, fusion=fusion
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
        return self.decode(self.encode(features, lengths), method, beam, fusion).tokens
