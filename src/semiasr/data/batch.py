"""The one object that flows from the data pipeline into models, objectives and the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

__all__ = ["Batch"]


@dataclass
class Batch:
    """A padded mini-batch, batch-first.

    features:        (B, T, F) float, log-mel frames, padded with zeros past ``feature_lengths``.
    feature_lengths: (B,) int64.
    tokens:          (B, U) int64 token ids, padded with 0 past ``token_lengths``. Id 0 is the blank
                     (CTC and transducer alike); text symbols are 1 … vocab_size − 1.
    token_lengths:   (B,) int64.
    texts:           the normalised reference transcripts, one per utterance.
    domains:         (B,) int64 domain ids (0 = source, 1 = target, … as the corpus defines).
    cut_ids:         the utterance ids.
    speakers:        speaker names (for per-speaker reports), "" where unknown.
    """

    features: Tensor
    feature_lengths: Tensor
    tokens: Tensor
    token_lengths: Tensor
    texts: list[str]
    domains: Tensor
    cut_ids: list[str]
    speakers: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def duration_frames(self) -> int:
        return int(self.feature_lengths.sum())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return replace(
            self,
            features=self.features.to(device, non_blocking=non_blocking),
            feature_lengths=self.feature_lengths.to(device, non_blocking=non_blocking),
            tokens=self.tokens.to(device, non_blocking=non_blocking),
            token_lengths=self.token_lengths.to(device, non_blocking=non_blocking),
            domains=self.domains.to(device, non_blocking=non_blocking),
        )
