"""The transducer objective: RNN-T negative log-likelihood, plus optionally an auxiliary CTC loss.

    L = (1/B) Σ_b [ −log P_rnnt(y_b | x_b)  +  λ · −log P_ctc(y_b | x_b) ]

"Sequence Transduction with Recurrent Neural Networks" (Graves, 2012); λ is ``ctc_weight`` (the
model's by default). Losses are summed over utterances and divided by the number of utterances (not
frames or tokens), so that a long utterance weighs more, as in the papers; the trainer's gradient
accumulation should weight batches by their number of utterances. CTC uses ``zero_infinity`` so that
an utterance too short for CTC does not poison the batch.

On the CPU without autocast the RNN-T term comes from the model's blocked joiner + loss pass
(``model(..., rnnt_loss=True)``, :func:`semiasr.functional.rnnt_joiner_loss`): the same value and
gradients as the loss of the materialised (B, T', U+1, V) logits (to rounding), without holding
them — 13× less memory kept for the backward on the demo's batches at about the same speed
(0.98–1.28× in three runs), 33× less and 1.9× faster at V = 256 (``benchmarks/joiner_loss.py``).
Under autocast (the blocked pass runs in float32, which would change the numbers of a bf16 run), on
a GPU (which runs the large joiner tensors well) and with a custom ``rnnt_loss_fn``, the model
returns the logits and the loss reads them; ``joint`` forces either.

Metrics: ``loss`` (= L), ``rnnt_loss`` and ``ctc_loss`` (per utterance), ``num_utterances``,
``num_frames`` (input feature frames), ``num_tokens``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from semiasr.data.batch import Batch
from semiasr.functional import _work_dtype  # half precision → float32, else as is
from semiasr.objectives._common import check_tokens, functional_loss, size_metrics, unwrap

__all__ = ["TransducerObjective"]


class TransducerObjective:
    """``objective(model, batch) → (loss, metrics)`` for a :class:`~semiasr.models.Transducer`.

    ``rnnt_loss_fn``/``ctc_loss_fn`` default to :mod:`semiasr.functional`'s (torchaudio / torch
    signatures; ``rnnt_loss_fn`` is called with ``reduction="none"``, ``ctc_loss_fn`` with
    ``reduction="sum", zero_infinity=True``). ``joint``: compute the RNN-T loss in the model's
    forward without the logits (None: on the CPU without autocast, when ``rnnt_loss_fn`` is not
    given). The loss is the sum over the batch's utterances divided by their number; an
    utterance with no encoder frame adds 0 (and no gradient) to both terms.
    """

    def __init__(
        self,
        ctc_weight: float | None = None,
        rnnt_loss_fn: Callable[..., Tensor] | None = None,
        ctc_loss_fn: Callable[..., Tensor] | None = None,
        joint: bool | None = None,
    ):
        if joint and rnnt_loss_fn is not None:
            raise ValueError("joint=True computes the loss in the model; rnnt_loss_fn is unused")
        self.ctc_weight = ctc_weight
        self.rnnt_loss_fn = rnnt_loss_fn
        self.ctc_loss_fn = ctc_loss_fn
        self.joint = joint

    def use_joint(self, device: torch.device) -> bool:
        """Whether a batch on ``device`` goes through the blocked joiner + loss pass."""
        if self.joint is not None:
            return self.joint
        return (
            self.rnnt_loss_fn is None
            and device.type == "cpu"
            and not torch.is_autocast_enabled(device.type)
        )

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, float]]:
        inner = unwrap(model)
        check_tokens(batch, inner.vocab_size)
        n = len(batch)
        if self.use_joint(batch.features.device):
            out = model(
                batch.features,
                batch.feature_lengths,
                batch.tokens,
                batch.token_lengths,
                rnnt_loss=True,
            )
            nll = out.rnnt_nll
        else:
            out = model(batch.features, batch.feature_lengths, batch.tokens, batch.token_lengths)
            rnnt_fn = self.rnnt_loss_fn or functional_loss("rnnt_loss")
            nll = rnnt_fn(
                _work_dtype(out.logits),
                batch.tokens.int(),
                out.lengths.clamp(min=1).int(),  # a frame-less utterance: scored, then zeroed
                batch.token_lengths.int(),
                blank=inner.blank,
                reduction="none",
            )
        # an utterance with no encoder frame (too short for the front end) has no alignment: it
        # counts 0 with no gradient, like CTC's zero_infinity, instead of costing the whole update
        rnnt = torch.where(out.lengths == 0, torch.zeros_like(nll), nll).sum() / n
        loss = rnnt
        metrics = {"rnnt_loss": float(rnnt.detach())}
        weight = inner.ctc_weight if self.ctc_weight is None else self.ctc_weight
        if weight > 0:
            if out.ctc_log_probs is None:
                raise ValueError("ctc_weight > 0 but the model has no CTC head")
            ctc_fn = self.ctc_loss_fn or functional_loss("ctc_loss")
            ctc = (
                ctc_fn(
                    out.ctc_log_probs,
                    batch.tokens,
                    out.lengths,
                    batch.token_lengths,
                    blank=inner.blank,
                    reduction="sum",
                    zero_infinity=True,
                )
                / n
            )
            loss = loss + weight * ctc
            metrics["ctc_loss"] = float(ctc.detach())
        return loss, {"loss": float(loss.detach()), **metrics, **size_metrics(batch)}
