"""Augmentation: SpecAugment on features; speed, noise, reverberation and telephone on waveforms.

Every function takes an explicit ``numpy.random.Generator``; the loader seeds one per batch from
(seed, epoch, batch index), so augmentation is the same whatever the number of workers.

- SpecAugment: Park et al., "SpecAugment: A Simple Data Augmentation Method for Automatic Speech
  Recognition", 2019; adaptive time masks (count and width proportional to the length): Park et al.,
  "SpecAugment on Large Scale Datasets", 2020. Features ``(B, T, F)`` with lengths ``(B,)``; masked
  entries are set to 0 (the mean after normalisation).
- Speed perturbation: Ko et al., "Audio Augmentation for Speech Recognition", 2015 — resample by 1/f
  and play at the old rate (tempo and pitch change together; length N → N/f).
- Additive noise at an SNR: ``y = x + g·n`` with ``g² = P_x / (P_n · 10^(SNR/10))``.
- Reverberation: convolution with a simulated room impulse response, exponentially decaying Gaussian
  noise whose energy falls by 60 dB in RT60 seconds (Polack's statistical model), after a unit
  direct path.
- Telephone band: resample to 8 kHz, keep 300–3400 Hz, 8-bit μ-law companding, resample back.
- Vocal tract length perturbation (VTLP): Jaitly & Hinton, "Vocal Tract Length Perturbation (VTLP)
  improves speech recognition", 2013 — frequencies scaled by α below a boundary (0.6 × Nyquist, their
  4.8 kHz at 16 kHz), linear above it so that Nyquist stays put; formants move, tempo and pitch do not
  (speed perturbation moves all three). Applied here to log-mel features: each mel bin takes the
  value of the unwarped features at the frequency that lands on its centre, by linear interpolation
  between neighbouring bins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor

from semiasr.data.audio import read_audio, resample
from semiasr.data.config import AugmentConfig
from semiasr.data.features import _mel, _mel_inv

__all__ = [
    "WaveAugmenter",
    "add_noise",
    "colored_noise",
    "reverberate",
    "spec_augment",
    "speed_perturb",
    "telephone",
    "vtlp",
    "vtlp_warp",
]


def spec_augment(
    feats: Tensor | np.ndarray,
    lengths: Tensor | Sequence[int],
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> Tensor | np.ndarray:
    """Frequency and time masks, in place on ``(B, T, F)`` (tensor or array); returns ``feats``.

    Per utterance of length T: ``freq_masks`` bands of width ~ U{0..freq_mask_width}; and
    ``min(time_masks, ⌊time_mask_per_frame · T⌋)`` spans of width ~ U{0..⌊time_mask_ratio · T⌋}.
    """
    _, _, f = feats.shape
    for b, t in enumerate(lengths.tolist() if isinstance(lengths, Tensor) else lengths):
        for _ in range(cfg.freq_masks):
            w = int(rng.integers(0, min(cfg.freq_mask_width, f) + 1))
            s = int(rng.integers(0, f - w + 1))
            feats[b, :t, s : s + w] = 0.0
        n_time = min(cfg.time_masks, int(cfg.time_mask_per_frame * t))
        max_w = int(cfg.time_mask_ratio * t)
        for _ in range(n_time):
            w = int(rng.integers(0, max_w + 1))
            s = int(rng.integers(0, t - w + 1))
            feats[b, s : s + w, :] = 0.0
    return feats


def speed_perturb(x: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Play ``x`` ``factor`` times faster: ``(N,)`` → ``(≈ N / factor,)``."""
    if factor == 1.0:
        return x
    return resample(x, round(sample_rate * factor), sample_rate)


def colored_noise(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Unit-variance Gaussian noise with power ∝ 1/f^exponent (0 white, 1 pink, 2 brown)."""
    size = 1 << max(0, (n - 1).bit_length())  # a power of two: fast FFTs for any n
    spec = np.fft.rfft(rng.standard_normal(size))
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spec / f ** (exponent / 2.0), n=size)[:n]
    return (y / (y.std() + 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x + g · noise`` with the gain g that makes the signal-to-noise ratio ``snr_db``."""
    px = float(np.mean(np.square(x, dtype=np.float64)))
    pn = float(np.mean(np.square(noise, dtype=np.float64)))
    if px <= 0.0 or pn <= 0.0:
        return x
    g = np.sqrt(px / (pn * 10.0 ** (snr_db / 10.0)))
    return (x + np.float32(g) * noise[: x.shape[0]]).astype(np.float32)


def room_impulse_response(sample_rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """A direct path (1 at t=0), then from 2.5 ms Gaussian noise decaying as exp(−6.91 t/RT60)."""
    n = max(1, int(rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)
    delay = int(0.0025 * sample_rate)
    h = np.zeros(n + delay)
    h[0] = 1.0
    h[delay:] += 0.5 * tail / np.sqrt(np.sum(tail**2) + 1e-12)
    return h


def reverberate(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``(x * h)[:N]`` by FFT, rescaled to the input's RMS level."""
    n = x.shape[0] + h.shape[0] - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: x.shape[0]]
    rx, ry = np.sqrt(np.mean(x.astype(np.float64) ** 2)), np.sqrt(np.mean(y**2))
    return (y * (rx / ry if ry > 0 else 1.0)).astype(np.float32)


def telephone(x: np.ndarray, sample_rate: int, *, mu: int = 255) -> np.ndarray:
    """8 kHz, 300–3400 Hz, 256-level μ-law; back at ``sample_rate`` with the same length."""
    y = resample(x, sample_rate, 8000)
    spec = np.fft.rfft(y)
    f = np.fft.rfftfreq(y.shape[0], 1 / 8000)
    spec[(f < 300) | (f > 3400)] = 0.0
    y = np.clip(np.fft.irfft(spec, y.shape[0]), -1.0, 1.0)
    comp = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
    comp = np.round((comp + 1) / 2 * mu) / mu * 2 - 1  # 8-bit quantisation
    y = np.sign(comp) * ((1 + mu) ** np.abs(comp) - 1) / mu
    z = resample(y.astype(np.float32), 8000, sample_rate)
    out = np.zeros_like(x)
    out[: min(len(z), len(x))] = z[: len(x)]
    return out


def vtlp_warp(
    f: np.ndarray, alpha: float, nyquist: float, boundary: float = 0.6, *, inverse: bool = False
) -> np.ndarray:
    """The VTLP frequency map (Hz → Hz), or its inverse: ``f·α`` up to ``f₀ = b·min(α, 1)/α`` with
    ``b = boundary · nyquist``, then the straight line from ``(f₀, α·f₀)`` to ``(nyquist, nyquist)``."""
    f = np.asarray(f, dtype=np.float64)
    f0 = boundary * nyquist * min(alpha, 1.0) / alpha
    g0 = alpha * f0
    if inverse:
        low = f / alpha
        high = nyquist - (nyquist - f) * (nyquist - f0) / (nyquist - g0)
        return np.where(f <= g0, low, high)
    high = nyquist - (nyquist - g0) / (nyquist - f0) * (nyquist - f)
    return np.where(f <= f0, alpha * f, high)


def vtlp(feats: np.ndarray, alpha: float, sample_rate: int, low_freq: float = 20.0) -> np.ndarray:
    """Log-mel features ``(T, M)`` (Kaldi bins from ``low_freq`` to Nyquist) as if the spectrum had
    been warped by :func:`vtlp_warp` with factor ``alpha`` (> 1 moves formants up)."""
    if alpha == 1.0:
        return feats
    m = feats.shape[1]
    nyquist = 0.5 * sample_rate
    lo, hi = _mel(low_freq), _mel(nyquist)
    delta = (hi - lo) / (m + 1)
    centres = _mel_inv(lo + delta * (np.arange(m) + 1))  # Hz, as kaldi_mel_banks' filters
    src = vtlp_warp(centres, alpha, nyquist, inverse=True)
    pos = np.clip((_mel(src) - lo) / delta - 1.0, 0.0, m - 1.0)  # fractional bin index
    i0 = np.minimum(np.floor(pos).astype(np.int64), m - 2)
    w = (pos - i0).astype(np.float32)
    return (feats[:, i0] * (1.0 - w) + feats[:, i0 + 1] * w).astype(np.float32)


class WaveAugmenter:
    """The waveform augmentations ``cfg`` switches on, in order: speed, reverb, noise, telephone."""

    def __init__(self, cfg: AugmentConfig, sample_rate: int):
        self.cfg = cfg
        self.sample_rate = int(sample_rate)
        self._noises: list[np.ndarray] | None = None

    @property
    def active(self) -> bool:
        c = self.cfg
        return bool(
            c.speed_perturb
            or (c.noise_snr_db and c.noise_prob > 0)
            or c.reverb_prob > 0
            or c.telephone_prob > 0
        )

    def _noise_bank(self) -> list[np.ndarray]:
        if self._noises is None:
            files = sorted(
                p
                for p in Path(self.cfg.noise_dir).rglob("*")
                if p.suffix.lower() in {".wav", ".flac", ".ogg", ".sph"}
            )
            self._noises = [read_audio(p, target_sample_rate=self.sample_rate) for p in files]
        return self._noises

    def _noise(self, n: int, rng: np.random.Generator) -> np.ndarray:
        bank = self._noise_bank() if self.cfg.noise_dir else []
        if not bank:
            return colored_noise(n, rng, float(rng.choice([0.0, 1.0, 2.0])))
        src = bank[int(rng.integers(len(bank)))]
        start = int(rng.integers(src.shape[0]))
        return src[(start + np.arange(n)) % src.shape[0]]  # a random excerpt, looped

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c, sr = self.cfg, self.sample_rate
        if c.speed_perturb and c.speed_factors:
            x = speed_perturb(x, sr, float(rng.choice(c.speed_factors)))
        if c.reverb_prob > 0 and rng.random() < c.reverb_prob:
            rt60 = float(rng.uniform(min(c.reverb_rt60), max(c.reverb_rt60)))
            x = reverberate(x, room_impulse_response(sr, rt60, rng))
        if c.noise_snr_db and rng.random() < c.noise_prob:
            snr = float(rng.uniform(min(c.noise_snr_db), max(c.noise_snr_db)))
            x = add_noise(x, self._noise(x.shape[0], rng), snr)
        if c.telephone_prob > 0 and rng.random() < c.telephone_prob:
            x = telephone(x, sr)
        return x
