"""The BEST-RQ objective: cross-entropy of the heads' predictions against the random-projection codes
at the masked frames (:class:`semiasr.models.BestRQ`), averaged over masked frames and codebooks.

Metrics: ``loss``, ``masked_acc`` (share of masked frames × codebooks whose code the head ranks
first; chance is 1/V), ``masked_frac`` (masked share of the valid output frames), ``num_masked``,
``num_utterances``, ``num_frames``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semiasr.data.batch import Batch

__all__ = ["BestRQObjective", "bestrq_loss"]


def bestrq_loss(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """(mean cross-entropy over the masked frames and codebooks, number of correct top-1 codes)
    for logits (N, K, V) and targets (N, K) of the N masked frames. None masked: a zero loss that
    still depends on the heads (so every rank of a DDP run takes part in the backward)."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0, logits.new_zeros((), dtype=torch.long)
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
    correct = (logits.argmax(-1) == targets).sum()
    return loss, correct


class BestRQObjective:
    """``objective(model, batch) → (loss, metrics)`` for a :class:`~semiasr.models.BestRQ` (possibly
    DDP-wrapped). The batch's transcripts are not read."""

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor | float]]:
        out = model(batch.features, batch.feature_lengths)
        loss, correct = bestrq_loss(out.logits, out.targets)
        masked = out.mask.sum().float()  # tensors: no host sync per micro-batch
        k = out.targets.shape[-1]
        stack = getattr(getattr(model, "module", model), "stack", 1)
        valid = (batch.feature_lengths // stack).clamp(max=out.mask.shape[1]).sum().float()
        return loss, {
            "loss": loss.detach(),
            "masked_acc": correct.float() / (masked * k).clamp(min=1.0),
            "masked_frac": masked / valid.clamp(min=1.0),
            "num_masked": masked,
            "num_utterances": float(len(batch)),
            "num_frames": float(batch.feature_lengths.sum()),
        }
