"""Acoustic conditions applied to 16 kHz speech: additive noise at a set SNR, reverberation by a
synthetic room impulse response, and a telephone channel. Signals are float arrays, shape (T,).

- **noise**: ``mix_at_snr`` scales noise ``n`` so that ``10 log10(sum s^2 / sum (g n)^2) = snr_db``
  over the whole utterance, and returns ``s + g n``. Noise is coloured Gaussian noise with power
  spectrum ``|N(f)|^2 ∝ f^-beta`` (beta 0 white, 1 pink, 2 brown), babble (3..7 overlapping talkers
  cut from a bank of other synthesised speech), or a mixture of both.
- **reverb**: ``h[n] = d δ[n] + e[n] exp(-6.91 n / (RT60 fs))`` with ``e`` white Gaussian noise,
  i.e. a direct path followed by an exponentially decaying diffuse tail that falls by 60 dB in RT60
  seconds (Polack's statistical model); ``d`` sets the direct-to-reverberant ratio. The output is
  the convolution truncated to the input length (the direct path keeps the words aligned).
- **telephone**: a zero-phase 300..3400 Hz band-pass, resampling to 8 kHz, G.711 μ-law companding
  (8 bits) and resampling back to 16 kHz, which leaves no energy above 4 kHz.
"""

from __future__ import annotations

import numpy as np
import soxr

__all__ = [
    "BABBLE_TALKERS",
    "babble_noise",
    "band_pass",
    "coloured_noise",
    "mix_at_snr",
    "mu_law",
    "reverberate",
    "room_impulse_response",
    "snr_db",
    "telephone",
]

SAMPLE_RATE = 16000
BABBLE_TALKERS = (3, 7)


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """10 log10 of the energy ratio of ``speech`` to ``noise`` (same shape), float64."""
    s = np.sum(np.square(speech, dtype=np.float64))
    n = np.sum(np.square(noise, dtype=np.float64))
    return float(10.0 * np.log10(s / n))


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr: float) -> np.ndarray:
    """``speech + g * noise`` with the gain ``g`` that makes the utterance SNR equal ``snr`` dB."""
    gain = 10.0 ** ((snr_db(speech, noise) - snr) / 20.0)
    return (speech + gain * noise).astype(np.float32)


def _fft_size(n: int) -> int:
    """The power of two >= n (FFTs of arbitrary, possibly prime, lengths are slow)."""
    return 1 << max(1, n - 1).bit_length()


def coloured_noise(num_samples: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as f^-beta, unit RMS, shape (num_samples,)."""
    nfft = _fft_size(num_samples)
    spectrum = np.fft.rfft(rng.standard_normal(nfft))
    freqs = np.fft.rfftfreq(nfft)
    freqs[0] = freqs[1]
    shaped = np.fft.irfft(spectrum * freqs ** (-beta / 2.0), n=nfft)[:num_samples]
    return (shaped / (np.sqrt(np.mean(shaped**2)) + 1e-12)).astype(np.float32)


def babble_noise(num_samples: int, bank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sum of 3..7 talkers, each a random stretch of ``bank`` (other synthesised speech, looped)
    with a random gain within ±3 dB; unit RMS, shape (num_samples,)."""
    out = np.zeros(num_samples, dtype=np.float64)
    for _ in range(int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))):
        start = int(rng.integers(0, len(bank)))
        idx = (start + np.arange(num_samples)) % len(bank)
        out += bank[idx] * 10.0 ** (rng.uniform(-3.0, 3.0) / 20.0)
    return (out / (np.sqrt(np.mean(out**2)) + 1e-12)).astype(np.float32)


def room_impulse_response(
    rt60: float, drr_db: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """A direct path plus an exponentially decaying noise tail (60 dB down after ``rt60`` s, length
    ``rt60`` s); the direct-to-reverberant energy ratio is ``drr_db``. Unit energy, shape (L,)."""
    n = np.arange(max(int(rt60 * sample_rate), 2))
    tail = rng.standard_normal(len(n)) * np.exp(-6.907755 * n / (rt60 * sample_rate))
    tail[0] = 0.0
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail**2))  # direct path has energy 1
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


def reverberate(speech: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``(speech * rir)[:T]`` by FFT convolution, rescaled to the input's RMS; shape (T,)."""
    size = len(speech) + len(rir) - 1
    nfft = _fft_size(size)
    wet = np.fft.irfft(np.fft.rfft(speech, nfft) * np.fft.rfft(rir, nfft), nfft)[: len(speech)]
    rms_in = np.sqrt(np.mean(np.square(speech, dtype=np.float64)))
    return (wet * rms_in / (np.sqrt(np.mean(wet**2)) + 1e-12)).astype(np.float32)


def band_pass(x: np.ndarray, low_hz: float, high_hz: float, sample_rate: int) -> np.ndarray:
    """Zero-phase band-pass by an FFT mask with 100 Hz raised-cosine skirts outside the band
    (computed on the signal zero-padded to a power of two, then trimmed)."""
    nfft = _fft_size(len(x))
    spectrum = np.fft.rfft(x, nfft)
    f = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    skirt = 100.0
    gain = np.ones_like(f)
    below = f < low_hz
    gain[below] = 0.5 * (1 + np.cos(np.pi * np.clip((low_hz - f[below]) / skirt, 0, 1)))
    above = f > high_hz
    gain[above] = 0.5 * (1 + np.cos(np.pi * np.clip((f[above] - high_hz) / skirt, 0, 1)))
    return np.fft.irfft(spectrum * gain, n=nfft)[: len(x)].astype(np.float32)


def mu_law(x: np.ndarray, bits: int = 8, mu: float = 255.0) -> np.ndarray:
    """μ-law compress, quantise to ``bits``, expand: G.711-style companding of x in [-1, 1]."""
    y = np.sign(x) * np.log1p(mu * np.minimum(np.abs(x), 1.0)) / np.log1p(mu)
    levels = 2 ** (bits - 1)
    y = np.round(y * levels) / levels
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def telephone(speech: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """300..3400 Hz band-pass, 8 kHz round trip with μ-law at 8 kHz; same length as the input."""
    peak = float(np.max(np.abs(speech))) + 1e-12
    narrow = band_pass(speech / peak * 0.7, 300.0, 3400.0, sample_rate)
    at8k = mu_law(soxr.resample(narrow, sample_rate, 8000, quality="HQ"))
    back = soxr.resample(at8k, 8000, sample_rate, quality="HQ")
    back = np.pad(back, (0, max(0, len(speech) - len(back))))[: len(speech)]
    return (back * peak / 0.7).astype(np.float32)
