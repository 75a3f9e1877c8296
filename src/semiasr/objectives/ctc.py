"""The CTC objective: L = (1/B) Σ_b −log P_ctc(y_b | x_b) ("Connectionist Temporal Classification",
Graves et al., 2006), summed over utterances and divided by their number.

Metrics: ``loss``, ``num_utterances``, ``num_frames`` (input feature frames), ``num_tokens``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from semiasr.data.batch import Batch
from semiasr.objectives._common import check_tokens, functional_loss, size_metrics, unwrap

__all__ = ["CTCObjective"]


class CTCObjective:
    """``objective(model, batch) → (loss, metrics)`` for a :class:`~semiasr.models.CTCModel`.

    ``zero_infinity`` zeroes the loss of utterances with fewer encoder frames than CTC needs.
    ``ctc_loss_fn`` defaults to :func:`semiasr.functional.ctc_loss`
    (``torch.nn.functional.ctc_loss``'s signature).
    """

    def __init__(
        self, zero_infinity: bool = True, ctc_loss_fn: Callable[..., Tensor] | None = None
    ):
        self.zero_infinity = zero_infinity
        self.ctc_loss_fn = ctc_loss_fn

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        inner = unwrap(model)
        check_tokens(batch, inner.vocab_size)
        out = model(batch.features, batch.feature_lengths, batch.tokens, batch.token_lengths)
        ctc_fn = self.ctc_loss_fn or functional_loss("ctc_loss")
        loss = ctc_fn(
            out.log_probs,
            batch.tokens,
            out.lengths,
            batch.token_lengths,
            blank=inner.blank,
            reduction="sum",
            zero_infinity=self.zero_infinity,
        ) / len(batch)
        return loss, {"loss": float(loss.detach()), **size_metrics(batch)}
