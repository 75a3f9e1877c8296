"""Convolutional subsampling of log-mel frames by 4 (or 8) in time before the Conformer blocks.

A stack of ``n`` Conv2d layers (kernel 3, stride 2, no padding, ReLU) over the (time, frequency)
plane, then a linear projection of the flattened (channels × frequency) to ``d_model`` — the front
end of "Conformer: Convolution-augmented Transformer for Speech Recognition" (Gulati et al., 2020).

Shapes: (B, T, F) → (B, T', D). Each conv maps a length ``L`` to
``(L - 3) // 2 + 1 = (L - 1) // 2``, so

    factor 4 (n = 2):  T' = ((T - 1) // 2 - 1) // 2
    factor 8 (n = 3):  T' = (((T - 1) // 2 - 1) // 2 - 1) // 2

(:func:`subsampled_lengths`). ``kind="dw_striding"`` keeps the lengths but makes every conv after
the first depthwise-separable (a depthwise 3×3 stride-2 conv, then a pointwise 1×1 conv), the cheap
front end of "Fast Conformer with Linearly Scalable Attention" (Rekesh et al., 2023): the
(channels²·9) multiply-adds per position of the second conv fall to (channels·9 + channels²), which on
a CPU makes the front end several times cheaper than the Conformer blocks after it. Without padding, output frame ``j`` reads exactly the input frames
``f·j … f·j + 2f - 2`` (``f = 2^n``); for a valid output frame all of them are valid, so padding
never leaks into valid outputs. An utterance shorter than :func:`min_input_frames` has no output
frame (length 0), whether or not its batch holds longer ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from semiasr.errors import ConfigError

__all__ = ["SUBSAMPLING_KINDS", "Conv2dSubsampling", "min_input_frames", "subsampled_lengths"]

_NUM_CONVS = {4: 2, 8: 3}
SUBSAMPLING_KINDS = ("conv2d", "dw_striding")


def _check_factor(factor: int) -> int:
    if factor not in _NUM_CONVS:
        raise ConfigError(
            f"subsampling factor must be 4 or 8, got {factor}", key="model.subsampling"
        )
    return _NUM_CONVS[factor]


def subsampled_lengths(lengths: Tensor, factor: int = 4) -> Tensor:
    """Exact output lengths (clamped at 0) of :class:`Conv2dSubsampling` for input lengths (B,)."""
    out = lengths
    for _ in range(_check_factor(factor)):
        out = torch.div(out - 1, 2, rounding_mode="floor")
    return out.clamp(min=0)


def min_input_frames(factor: int = 4) -> int:
    """The fewest input frames that give one output frame (7 for factor 4, 15 for factor 8)."""
    return 2 ** (_check_factor(factor) + 1) - 1


class Conv2dSubsampling(nn.Module):
    """(B, T, in_dim) features → (B, T', out_dim) frames, T' as in :func:`subsampled_lengths`.

    ``channels`` is the width of every conv layer (default ``out_dim``); ``kind`` is "conv2d" (full
    3×3 convs) or "dw_striding" (depthwise-separable after the first).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        factor: int = 4,
        channels: int | None = None,
        kind: str = "conv2d",
    ):
        super().__init__()
        n = _check_factor(factor)
        if kind not in SUBSAMPLING_KINDS:
            raise ConfigError(
                f"subsampling kind must be one of {', '.join(SUBSAMPLING_KINDS)}, got '{kind}'",
                key="model.subsampling_kind",
            )
        channels = channels or out_dim
        freq = in_dim
        layers: list[nn.Module] = []
        for i in range(n):
            if i == 0:
                layers.append(nn.Conv2d(1, channels, 3, stride=2))
            elif kind == "conv2d":
                layers.append(nn.Conv2d(channels, channels, 3, stride=2))
            else:
                layers += [
                    nn.Conv2d(channels, channels, 3, stride=2, groups=channels),
                    nn.Conv2d(channels, channels, 1),
                ]
            layers.append(nn.ReLU(inplace=True))  # a convolution's backward never reads its output
            freq = (freq - 1) // 2
        if freq < 1:
            raise ConfigError(
                f"feature dimension {in_dim} is too small for subsampling by {factor}",
                key="model.subsampling",
            )
        self.factor = factor
        self.kind = kind
        self.conv = nn.Sequential(*layers)
        self.out = nn.Linear(channels * freq, out_dim)

    def forward(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """features (B, T, F), lengths (B,) → frames (B, T', D), lengths (B,)."""
        short = min_input_frames(self.factor) - features.shape[1]
        if short > 0:
            # a batch of utterances too short for one output frame: padded to one frame that no
            # length reaches (each gets length 0), as inside a batch with longer utterances
            features = nn.functional.pad(features, (0, 0, 0, short))
        x = self.conv(features.unsqueeze(1))  # (B, C, T', F')
        b, c, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
        return x, subsampled_lengths(lengths, self.factor)
