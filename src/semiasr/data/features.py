"""Kaldi-compatible log-mel filterbanks, for a whole padded batch at once, and their normalisation.

For each frame t of length L (25 ms) every S samples (10 ms), ``snip_edges`` style
(``T = 1 + ⌊(N − L) / S⌋``), Kaldi's ``compute-fbank-feats`` does:

    x ← x − mean(x)                               remove the DC offset
    x[i] ← x[i] − 0.97 · x[i−1],  x[0] ← 0.03 x[0] pre-emphasis
    x ← x · (½ − ½ cos(2πi/(L−1)))^0.85           the "povey" window
    P ← |rfft(x, n = 2^⌈log2 L⌉)|²                power spectrum
    f[m] = log max(ε, Σ_k W[m, k] P[k])           80 triangular filters, mel(f) = 1127 ln(1 + f/700)

:class:`Fbank` implements exactly that with torch ops on ``(B, N)`` waveforms → ``(B, T, 80)``
features, so one call serves a batch (device-agnostic torch ops; tested on CPU). It agrees with
kaldi-native-fbank to 1e-4 (tests). Normalisation: per-utterance mean/variance (CMVN over the valid
frames) or global statistics from the training set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from semiasr.data.config import FeatureConfig
from semiasr.errors import DataError

__all__ = [
    "Fbank",
    "GlobalStats",
    "NativeFbank",
    "apply_cmvn",
    "kaldi_mel_banks",
    "num_frames",
]

_EPS = float(torch.finfo(torch.float32).eps)


def num_frames(num_samples: int | Tensor, frame_length: int, frame_shift: int) -> int | Tensor:
    """Frames of ``num_samples`` samples with Kaldi's ``snip_edges=true``: 1 + ⌊(N − L)/S⌋, or 0."""
    if isinstance(num_samples, Tensor):
        n = torch.div(num_samples - frame_length, frame_shift, rounding_mode="floor") + 1
        return n.clamp(min=0)
    return max(0, 1 + (num_samples - frame_length) // frame_shift)


def _mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


def _mel_inv(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * np.expm1(np.asarray(m, dtype=np.float64) / 1127.0)


def kaldi_mel_banks(
    num_bins: int, fft_size: int, sample_rate: float, low_freq: float = 20.0, high_freq: float = 0.0
) -> np.ndarray:
    """Kaldi's triangular mel filters, ``(num_bins, fft_size // 2 + 1)`` float64, Nyquist column 0.

    Filter m rises from mel ``lo + m·Δ`` to ``lo + (m+1)·Δ`` and falls to ``lo + (m+2)·Δ``, with
    ``Δ = (mel(high) − mel(low)) / (num_bins + 1)``; weights are linear in mel.
    """
    nyquist = 0.5 * sample_rate
    high = high_freq if high_freq > 0 else nyquist + high_freq
    if not 0.0 <= low_freq < high <= nyquist:
        raise ValueError(f"mel range [{low_freq}, {high}] Hz does not fit in [0, {nyquist}] Hz")
    lo, hi = _mel(low_freq), _mel(high)
    delta = (hi - lo) / (num_bins + 1)
    half = fft_size // 2
    mel_k = _mel(np.arange(half) * (sample_rate / fft_size))  # (half,)
    left = lo + np.arange(num_bins)[:, None] * delta  # (M, 1)
    center, right = left + delta, left + 2 * delta
    rise = (mel_k - left) / (center - left)
    fall = (right - mel_k) / (right - center)
    w = np.where(mel_k <= center, rise, fall)
    w = np.where((mel_k > left) & (mel_k < right), w, 0.0)
    return np.concatenate([w, np.zeros((num_bins, fft_size - half * 2 + 1))], axis=1)


class Fbank:
    """Batched Kaldi log-mel: ``(B, N)`` waveforms + lengths → ``(B, T, M)`` + frame lengths.

    Waveforms are float in [-1, 1] (not scaled to 16-bit integers); padding frames come out as
    zeros. ``dither`` adds Gaussian noise of that standard deviation (Kaldi's default 1.0 is in
    16-bit units: use ≈ 3e-5 for floats); it is 0 by default so that features are deterministic.
    """

    def __init__(self, cfg: FeatureConfig | None = None, *, dtype: torch.dtype = torch.float32):
        cfg = cfg or FeatureConfig()
        self.sample_rate = int(cfg.sample_rate)
        self.frame_length = round(cfg.sample_rate * cfg.frame_length_ms / 1000.0)
        self.frame_shift = round(cfg.sample_rate * cfg.frame_shift_ms / 1000.0)
        self.fft_size = 1 << math.ceil(math.log2(self.frame_length))
        self.num_mel_bins = int(cfg.num_mel_bins)
        self.dither = float(getattr(cfg, "dither", 0.0))
        self.dtype = dtype
        i = torch.arange(self.frame_length, dtype=torch.float64)
        hann = 0.5 - 0.5 * torch.cos(2 * math.pi * i / (self.frame_length - 1))
        self._window = hann.pow(0.85).to(dtype)
        banks = kaldi_mel_banks(self.num_mel_bins, self.fft_size, self.sample_rate)
        self._banks_t = torch.from_numpy(banks.T.copy()).to(dtype)  # (K, M)

    def frames_for(self, num_samples: int | Tensor) -> int | Tensor:
        """Number of feature frames for ``num_samples`` samples."""
        return num_frames(num_samples, self.frame_length, self.frame_shift)

    def __call__(
        self,
        waves: Tensor,
        lengths: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``waves`` (B, N) → features (B, T, M), frame lengths (B,) int64."""
        if waves.dim() == 1:
            waves = waves[None]
        b, n = waves.shape
        if lengths is None:
            lengths = torch.full((b,), n, dtype=torch.int64)
        lengths = lengths.to(torch.int64)
        flens = self.frames_for(lengths.cpu())
        t = int(flens.max()) if b else 0
        if t == 0:
            return waves.new_zeros((b, 0, self.num_mel_bins), dtype=self.dtype), flens
        x = waves.to(self.dtype)
        frames = x.unfold(1, self.frame_length, self.frame_shift)[:, :t]  # (B, T, L)
        if self.dither > 0:
            noise = torch.randn(frames.shape, generator=generator, dtype=self.dtype)
            frames = frames + self.dither * noise.to(frames.device)
        frames = frames - frames.mean(dim=-1, keepdim=True)
        prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
        frames = (frames - 0.97 * prev) * self._window.to(frames.device)
        power = torch.fft.rfft(frames, n=self.fft_size).abs().square()  # (B, T, K)
        mel = torch.matmul(power, self._banks_t.to(frames.device)).clamp_min(_EPS).log()
        valid = torch.arange(t, device=mel.device)[None, :] < flens.to(mel.device)[:, None]
        return mel * valid[..., None], flens


def apply_cmvn(
    feats: Tensor, lengths: Tensor, stats: GlobalStats | None = None, *, eps: float = 1e-5
) -> Tensor:
    """Mean/variance normalisation of ``(B, T, F)`` features over the valid frames; padding stays 0.

    With ``stats``: ``(x − μ_global) / σ_global``; without: per utterance, μ and σ over its own
    frames.
    """
    valid = (torch.arange(feats.shape[1])[None, :] < lengths[:, None]).to(feats.dtype)[..., None]
    if stats is not None:
        mean = torch.as_tensor(stats.mean, dtype=feats.dtype)
        std = torch.as_tensor(stats.std, dtype=feats.dtype)
        return (feats - mean) / std * valid
    count = lengths.clamp(min=1).to(feats.dtype)[:, None, None]
    mean = (feats * valid).sum(1, keepdim=True) / count
    var = ((feats - mean).square() * valid).sum(1, keepdim=True) / count
    return (feats - mean) * torch.rsqrt(var + eps) * valid


@dataclass
class GlobalStats:
    """Per-dimension mean and standard deviation of the training features, ``(F,)`` each.

    Accumulate with :meth:`update` (float64 sums), finish with :meth:`finalize`; stored with the
    model as a plain dict (:meth:`to_dict` / :meth:`from_dict`).
    """

    mean: np.ndarray
    std: np.ndarray
    count: int = 0

    @classmethod
    def accumulator(cls, dim: int) -> _StatsAccumulator:
        return _StatsAccumulator(dim)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "count": int(self.count)}

    @classmethod
    def from_dict(cls, d: dict) -> GlobalStats:
        return cls(
            np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64), int(d["count"])
        )


class _StatsAccumulator:
    def __init__(self, dim: int):
        self.n = 0
        self.s1 = np.zeros(dim, np.float64)
        self.s2 = np.zeros(dim, np.float64)

    def update(self, feats: Tensor, lengths: Tensor) -> None:
        for f, n in zip(feats, lengths.tolist()):
            x = f[:n].double().numpy()
            self.n += n
            self.s1 += x.sum(0)
            self.s2 += np.square(x).sum(0)

    def finalize(self, floor: float = 1e-3) -> GlobalStats:
        if self.n == 0:
            raise DataError("no feature frames to compute global statistics from")
        mean = self.s1 / self.n
        std = np.sqrt(np.maximum(self.s2 / self.n - mean**2, floor**2))
        return GlobalStats(mean, std, self.n)


class NativeFbank:
    """The same features for one utterance with kaldi-native-fbank: ``(N,)`` → ``(T, M)`` float32.

    On a CPU this is faster than :class:`Fbank` per utterance, so the data loader uses it; the two
    agree to 1e-4 (tests).
    """

    def __init__(self, cfg: FeatureConfig | None = None):
        cfg = cfg or FeatureConfig()
        self.sample_rate = int(cfg.sample_rate)
        self.num_mel_bins = int(cfg.num_mel_bins)
        self._frame = (
            float(cfg.frame_length_ms),
            float(cfg.frame_shift_ms),
            float(getattr(cfg, "dither", 0.0)),
        )
        self._setup()

    def _setup(self) -> None:
        import kaldi_native_fbank as knf

        self._knf = knf
        opts = knf.FbankOptions()
        opts.frame_opts.samp_freq = float(self.sample_rate)
        length_ms, shift_ms, dither = self._frame
        opts.frame_opts.frame_length_ms = length_ms
        opts.frame_opts.frame_shift_ms = shift_ms
        opts.frame_opts.dither = dither
        opts.frame_opts.snip_edges = True
        opts.mel_opts.num_bins = self.num_mel_bins
        self._opts = opts

    def __getstate__(self) -> dict:
        """Pickled without the extension's objects (loader workers started by spawn/forkserver
        rebuild them)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_knf", "_opts")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._setup()

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        fb = self._knf.OnlineFbank(self._opts)
        fb.accept_waveform(self.sample_rate, np.ascontiguousarray(wave, dtype=np.float32))
        fb.input_finished()
        n = fb.num_frames_ready
        if n == 0:
            return np.zeros((0, self.num_mel_bins), np.float32)
        return np.stack([fb.get_frame(i) for i in range(n)]).astype(np.float32, copy=False)
