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
from semiasr.functional import _work_dtype, rnnt_joiner_loss
from semiasr.functional import rnnt_loss as semiring_rnnt_loss
from semiasr.nn import ConformerEncoder, CTCHead, EncoderOutput, Joiner

if TYPE_CHECKING:
    from semiasr.lm import ShallowFusion

__all__ = ["Transducer", "TransducerOutput"]


@dataclass
class TransducerOutput:
    """logits (B, T', U+1, V), or None when the forward computed the loss instead (``rnnt_nll``
    (B,), −log P(y | x) per utterance); lengths (B,) of the encoder frames; ctc_log_probs
    (B, T', V) or None."""

    logits: Tensor | None
    lengths: Tensor
    ctc_log_probs: Tensor | None
    encoder: EncoderOutput
    rnnt_nll: Tensor | None = None


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
        rnnt_loss: bool = False,
    ) -> TransducerOutput:
        """With ``rnnt_loss`` (needs ``token_lengths``) the output holds the per-utterance RNN-T loss
        instead of the logits: for the plain joiner it is computed in one blocked pass that never
        holds the (B, T', U+1, V) lattice (:func:`semiasr.functional.rnnt_joiner_loss`); a joiner
        with hooks or LoRA on its output layer, or another class, goes through its own forward."""
        enc = self.encode(features, lengths, return_hidden)
        ctc = self.ctc_head(enc.frames) if self.ctc_head is not None else None
        pred = self.predict(tokens)
        if not rnnt_loss:
            return TransducerOutput(self.joiner(enc.frames, pred), enc.lengths, ctc, enc)
        if token_lengths is None:
            raise ValueError("rnnt_loss=True needs token_lengths")
        return TransducerOutput(
            None, enc.lengths, ctc, enc, self._nll(enc, pred, tokens, token_lengths)
        )

    def sequence_log_likelihood(
        self, enc: EncoderOutput, tokens: Tensor, token_lengths: Tensor
    ) -> Tensor:
        """(B,) log P(y | x) of each transcript ``tokens`` (B, U) given encoder outputs, summed
        over all alignments (the negative RNN-T loss; −inf where no alignment has probability)."""
        nll = self._nll(enc, self.predict(tokens), tokens, token_lengths)
        return -nll.double()

    def _nll(
        self, enc: EncoderOutput, pred: Tensor, tokens: Tensor, token_lengths: Tensor
    ) -> Tensor:
        """(B,) −log P(y | x); inf (zero gradient) for an utterance with no encoder frame (too
        short for the front end), which the loss itself would refuse."""
        empty = enc.lengths == 0
        lengths = enc.lengths.clamp(min=1)  # scored on one padding frame, then set to inf
        args = (tokens.int(), lengths.int(), token_lengths.int())
        if _plain_joiner(self.joiner):
            j = self.joiner
            nll = rnnt_joiner_loss(
                j.project_encoder(enc.frames),
                j.project_predictor(pred),
                j.output.weight,
                j.output.bias,
                *args,
                blank=self.blank,
                reduction="none",
            )
        else:
            logits = _work_dtype(self.joiner(enc.frames, pred))  # a float32 loss under autocast
            nll = semiring_rnnt_loss(logits, *args, blank=self.blank, reduction="none")
        return torch.where(empty, torch.full_like(nll, float("inf")), nll)  # no host sync

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


def _plain(module: nn.Module) -> bool:
    """No forward or backward hooks and no forward replaced on the instance (adapters, LoRA, MDA
    routing and fusion attach that way): its output is what its class computes."""
    return (
        not module._forward_hooks
        and not module._forward_pre_hooks
        and not module._backward_hooks
        and not module._backward_pre_hooks
        and "forward" not in module.__dict__
    )


def _plain_joiner(joiner: nn.Module) -> bool:
    """The blocked joiner + loss pass reads the output layer's weights directly: only for an
    unmodified :class:`Joiner` (no ``join`` replaced either) whose output layer is an unmodified
    ``nn.Linear`` with a bias, and no global module hooks. Patching ``Joiner.join`` or
    ``nn.Linear.forward`` on the class is not detected."""
    out = getattr(joiner, "output", None)
    global_hooks = nn.modules.module
    return (
        type(joiner) is Joiner
        and _plain(joiner)
        and "join" not in joiner.__dict__
        and type(out) is nn.Linear
        and _plain(out)
        and out.bias is not None
        and not global_hooks._global_forward_hooks
        and not global_hooks._global_forward_pre_hooks
        and not global_hooks._global_backward_hooks
        and not global_hooks._global_backward_pre_hooks
    )
