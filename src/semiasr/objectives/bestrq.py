"""The BEST-RQ objective: cross-entropy of the heads' predictions against the random-projection codes
at the masked frames (:class:`semiasr.models.BestRQ`), averaged over masked frames and codebooks.

Metrics: ``loss``, ``masked_acc`` (share of masked frames × codebooks whose code the head ranks
first; chance is 1/V), ``masked_frac`` (masked share of the valid output frames: the encoder's lengths), ``num_masked``,
``num_utterances``, ``num_frames``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from semiasr.data.batch import Batch
from semiasr.errors import ConfigError, DataError

__all__ = ["BestRQObjective", "JointObjective", "bestrq_loss"]


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
        valid = out.num_valid.float()
        return loss, {
            "loss": loss.detach(),
            "masked_acc": correct.float() / (masked * k).clamp(min=1.0),
            "masked_frac": masked / valid.clamp(min=1.0),
            "num_masked": masked,
            "num_utterances": float(len(batch)),
            "num_frames": float(batch.feature_lengths.sum()),
        }


class JointObjective(nn.Module):
    """Supervised and self-supervised training in one step (JUST, Bai et al., 2022; the "Hydra"
    reading of ALGORITHMS.md §3): each labelled batch goes through ``supervised`` (e.g. the
    transducer objective) and the next batch of ``unlabelled`` (e.g. the target domain's audio)
    through BEST-RQ on the recogniser's own encoder,

        L = L_supervised(labelled batch) + weight · L_BEST-RQ(unlabelled batch).

    The module holds the BEST-RQ ``head`` (trained with the model: the trainer adds its parameters
    to the optimizer) and the position of the unlabelled stream, which cycles through its epochs and
    is saved with the trainer's checkpoints (``get_extra_state``), so a resumed run reads the same
    unlabelled batches as an uninterrupted one. Metrics: the supervised ones (``loss`` becomes the
    total; the supervised objective's is ``sup_loss``), plus ``ssl_loss`` and ``masked_acc``. Under
    DDP the stream position saved is rank 0's: exact while every rank draws one unlabelled batch
    per micro-batch (a batch dropped whole by ``data.skip_bad`` on one rank would be replayed)."""

    def __init__(self, supervised: Any, head: nn.Module, unlabelled: Any, weight: float):
        super().__init__()
        if not weight > 0:
            raise ConfigError(f"ssl.joint_weight must be > 0, got {weight}", key="ssl.joint_weight")
        self.supervised, self.head, self.unlabelled = supervised, head, unlabelled
        self.weight = float(weight)
        self._it: Any = None

    def _next_unlabelled(self) -> Batch:
        for _ in range(2):  # a fresh epoch when the last one is used up
            if self._it is None:
                self._it = iter(self.unlabelled)
            batch = next(self._it, None)
            if batch is not None:
                return batch
            self._it = None
            self.unlabelled.set_epoch(self.unlabelled.epoch + 1)
        raise DataError("the unlabelled loader of ssl.splits yields no batches", item="ssl.splits")

    def forward(self, model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Any]]:
        loss, metrics = self.supervised(model, batch)
        ub = self._next_unlabelled().to(batch.features.device)
        encoder = getattr(model, "module", model).encoder
        out = self.head.predict(encoder, ub.features, ub.feature_lengths)
        ssl, correct = bestrq_loss(out.logits, out.targets)
        masked = out.mask.sum().float() * out.targets.shape[-1]
        total = loss + self.weight * ssl
        return total, {
            **metrics,
            "sup_loss": loss.detach(),
            "loss": total.detach(),
            "ssl_loss": ssl.detach(),
            "masked_acc": correct.float() / masked.clamp(min=1.0),
        }

    def get_extra_state(self) -> dict[str, Any]:
        return {"unlabelled": self.unlabelled.state_dict()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.unlabelled.load_state_dict(state["unlabelled"])
        self._it = None
