"""Augmentation: SpecAugment masks (adaptive, seeded), speed, SNR, reverberation, telephone band."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semiasr.data.augment import (
    WaveAugmenter,
    add_noise,
    colored_noise,
    reverberate,
    room_impulse_response,
    spec_augment,
    speed_perturb,
    telephone,
    vtlp,
    vtlp_warp,
)
from semiasr.data.config import AugmentConfig
from semiasr.data.features import kaldi_mel_banks


def _masks(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    zero = x == 0
    return zero.all(dim=1), zero.all(dim=2)  # (B, F) masked bands, (B, T) masked frames


def test_data_spec_augment_bounds_and_seed() -> None:
    cfg = AugmentConfig(freq_masks=2, freq_mask_width=10, time_masks=10, time_mask_ratio=0.05)
    x = torch.randn(3, 400, 80) + 10
    lens = torch.tensor([400, 200, 50])
    a = spec_augment(x.clone(), lens, np.random.default_rng(3), cfg)
    b = spec_augment(x.clone(), lens, np.random.default_rng(3), cfg)
    c = spec_augment(x.clone(), lens, np.random.default_rng(4), cfg)
    assert torch.equal(a, b) and not torch.equal(a, c)
    bands, frames = _masks(a)
    for i, n in enumerate(lens.tolist()):
        assert bands[i].sum() <= 2 * 10
        # adaptive: at most min(10, 0.04 n) masks of at most 0.05 n frames
        assert frames[i, :n].sum() <= min(10, int(0.04 * n)) * int(0.05 * n)
    assert torch.equal(a[1, 200:], x[1, 200:])  # padding untouched
    # numpy arrays work the same
    arr = x.clone().numpy()
    spec_augment(arr, lens.tolist(), np.random.default_rng(3), cfg)
    np.testing.assert_array_equal(arr, a.numpy())


def test_data_spec_augment_masks_something() -> None:
    cfg = AugmentConfig(freq_masks=2, freq_mask_width=27, time_masks=10, time_mask_ratio=0.05)
    x = torch.ones(1, 1000, 80)
    masked = [
        float(
            (spec_augment(x.clone(), torch.tensor([1000]), np.random.default_rng(s), cfg) == 0)
            .float()
            .mean()
        )
        for s in range(10)
    ]
    assert 0.05 < np.mean(masked) < 0.6


def test_data_speed_perturb_length() -> None:
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    for f in (0.9, 1.1):
        assert abs(speed_perturb(x, 16000, f).shape[0] - 16000 / f) <= 2
    assert speed_perturb(x, 16000, 1.0) is x


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_data_noise_at_snr(snr: float) -> None:
    rng = np.random.default_rng(1)
    x = np.sin(np.linspace(0, 300, 16000)).astype(np.float32) * 0.3
    n = colored_noise(16000, rng, 1.0)
    y = add_noise(x, n, snr)
    got = 10 * np.log10(
        np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2)
    )
    assert got == pytest.approx(snr, abs=0.01)


def test_data_colored_noise_slopes() -> None:
    rng = np.random.default_rng(0)
    for exponent in (0.0, 2.0):
        n = colored_noise(1 << 15, rng, exponent)
        p = np.abs(np.fft.rfft(n)) ** 2
        lo, hi = p[10:100].mean(), p[5000:10000].mean()
        assert (lo / hi > 100) == (exponent == 2.0)


def test_data_reverb_decay() -> None:
    rng = np.random.default_rng(0)
    h = room_impulse_response(16000, 0.5, rng)
    assert h[0] == 1.0
    e = np.cumsum(h[::-1] ** 2)[::-1]  # Schroeder backward integral
    db = 10 * np.log10(e / e[0])
    # energy decays by ~60 dB over RT60 (the direct path keeps part of the early energy)
    assert db[int(0.4 * 16000)] < -15
    x = np.zeros(1000, np.float32)
    x[0] = 1.0
    y = reverberate(x, np.array([1.0, 0.5]))
    np.testing.assert_allclose(y[:2] / y[0], [1.0, 0.5], atol=1e-6)


def test_data_telephone_band() -> None:
    sr = 16000
    t = np.arange(sr) / sr
    x = (
        0.2 * np.sin(2 * np.pi * 100 * t)
        + 0.2 * np.sin(2 * np.pi * 1000 * t)
        + 0.2 * np.sin(2 * np.pi * 6000 * t)
    ).astype(np.float32)
    y = telephone(x, sr)
    p = np.abs(np.fft.rfft(y))
    assert y.shape == x.shape
    assert p[1000] > 20 * p[100] and p[1000] > 20 * p[6000]


def test_data_wave_augmenter_seeded_and_switchable() -> None:
    x = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    off = WaveAugmenter(AugmentConfig(), 16000)
    assert not off.active and off(x, np.random.default_rng(0)) is x
    cfg = AugmentConfig(
        speed_perturb=True,
        noise_snr_db=[5, 15],
        noise_prob=1.0,
        reverb_prob=1.0,
        telephone_prob=1.0,
    )
    on = WaveAugmenter(cfg, 16000)
    a, b = on(x, np.random.default_rng(5)), on(x, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all() and not np.array_equal(a[: len(x)], x[: len(a)])


@pytest.mark.parametrize("alpha", [0.9, 1.0, 1.12])
def test_data_vtlp_warp_is_piecewise_linear_and_invertible(alpha: float) -> None:
    nyq = 4000.0
    f = np.linspace(0.0, nyq, 801)
    g = vtlp_warp(f, alpha, nyq)
    assert np.all(np.diff(g) > 0) and g[0] == 0.0 and g[-1] == pytest.approx(nyq)
    f0 = 0.6 * nyq * min(alpha, 1.0) / alpha
    np.testing.assert_allclose(g[f <= f0], alpha * f[f <= f0])
    np.testing.assert_allclose(vtlp_warp(g, alpha, nyq, inverse=True), f, atol=1e-9)


def test_data_vtlp_features_match_a_warped_spectrum() -> None:
    """Log-mel of a spectrum warped in Hz (float64 reference) ≈ vtlp() of the log-mel of the
    unwarped spectrum; α = 1 returns the features themselves."""
    sr, fft, m = 8000, 2048, 40
    banks = kaldi_mel_banks(m, fft, sr)[:, : fft // 2 + 1]
    hz = np.arange(fft // 2 + 1) * sr / fft

    def spectrum(x):  # two smooth formant-like peaks on a floor
        return (
            1e-3
            + np.exp(-(((x - 700.0) / 150.0) ** 2))
            + 0.5 * np.exp(-(((x - 2200.0) / 250.0) ** 2))
        )

    logmel = np.log(banks @ spectrum(hz))[None].astype(np.float32)
    assert vtlp(logmel, 1.0, sr) is logmel
    for alpha in (0.9, 1.1):
        warped = np.log(banks @ spectrum(vtlp_warp(hz, alpha, sr / 2, inverse=True)))
        got = vtlp(logmel, alpha, sr)[0]
        # centre of mass (in bins) of the 700 Hz formant: moved by α, to where the reference has it
        c_got, c_ref, c_old = (
            float(np.sum(np.arange(22) * np.exp(v[:22])) / np.sum(np.exp(v[:22])))
            for v in (got, warped, logmel[0])
        )
        assert abs(c_got - c_ref) < 0.1 and abs(c_got - c_old) > 0.8
        assert (c_got > c_old) == (alpha > 1)
        np.testing.assert_allclose(got, warped, atol=0.3)
        assert np.abs(got - warped).mean() < 0.08
