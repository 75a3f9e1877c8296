"""Helpers shared by the objectives: the loss functions of :mod:`semiasr.functional`, token
checks."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from semiasr.data.batch import Batch
from semiasr.errors import DataError


def functional_loss(name: str) -> Callable[..., Tensor]:
    """``semiasr.functional.<name>``, imported when first needed."""
    from semiasr import functional

    return getattr(functional, name)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel (or similar ``.module``) wrapper."""
    return getattr(model, "module", model)


def check_tokens(batch: Batch, vocab_size: int) -> None:
    """Raise DataError when a token id is outside 1 … vocab_size − 1 within the token lengths."""
    if batch.tokens.numel() == 0:
        return
    u = batch.tokens.shape[1]
    valid = batch.tokens.new_ones(batch.tokens.shape, dtype=bool)
    valid &= batch.tokens.new_tensor(range(u))[None, :] < batch.token_lengths[:, None]
    bad = valid & ((batch.tokens < 1) | (batch.tokens >= vocab_size))
    if bool(bad.any()):
        row = int(bad.any(dim=1).nonzero()[0])
        item = batch.cut_ids[row] if row < len(batch.cut_ids) else f"utterance {row}"
        value = int(batch.tokens[row][bad[row]][0])
        raise DataError(
            f"token id {value} is outside 1..{vocab_size - 1} (0 is the blank)", item=item
        )


def size_metrics(batch: Batch) -> dict[str, float]:
    return {
        "num_utterances": float(len(batch)),
        "num_frames": float(batch.feature_lengths.sum()),
        "num_tokens": float(batch.token_lengths.sum()),
    }
