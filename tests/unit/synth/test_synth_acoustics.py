"""Acoustic conditions against float64 references: SNR, noise colour, RT60, telephone band."""

from __future__ import annotations

import numpy as np
import pytest

from semiasr.data.synth import acoustics

FS = 16000


def _speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Amplitude-modulated harmonics with pauses plus noise: a broadband stand-in for speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / FS
    x = sum(np.sin(k * phase) / k for k in range(1, 60))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    return (x * envelope + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("snr", [5.0, 12.5, 20.0])
def test_mix_at_snr_hits_the_target(snr: float) -> None:
    s = _speech_like(2.0)
    n = acoustics.coloured_noise(len(s), 1.0, np.random.default_rng(1))
    y = acoustics.mix_at_snr(s, n, snr)
    residual = y.astype(np.float64) - s.astype(np.float64)
    measured = 10 * np.log10(np.sum(s.astype(np.float64) ** 2) / np.sum(residual**2))
    assert measured == pytest.approx(snr, abs=0.01)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_coloured_noise_has_the_asked_spectral_slope(beta: float) -> None:
    x = acoustics.coloured_noise(2**16, beta, np.random.default_rng(2))
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / FS)
    band = (f > 50) & (f < 7000)
    slope = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.1)


def test_babble_is_a_sum_of_bank_stretches() -> None:
    bank = _speech_like(5.0, seed=3)
    b = acoustics.babble_noise(FS, bank, np.random.default_rng(4))
    assert b.shape == (FS,) and np.sqrt(np.mean(b.astype(np.float64) ** 2)) == pytest.approx(
        1.0, rel=1e-3
    )
    # lying in the span of looped bank stretches: not white noise
    assert np.corrcoef(np.abs(np.fft.rfft(b)), np.abs(np.fft.rfft(bank[:FS])))[0, 1] > 0.3


@pytest.mark.parametrize(("rt60", "drr"), [(0.3, 0.0), (0.8, 5.0)])
def test_rir_decays_60_db_in_rt60_with_the_asked_drr(rt60: float, drr: float) -> None:
    h = acoustics.room_impulse_response(rt60, drr, np.random.default_rng(5)).astype(np.float64)
    assert np.sum(h**2) == pytest.approx(1.0, rel=1e-4)
    assert 10 * np.log10(h[0] ** 2 / np.sum(h[1:] ** 2)) == pytest.approx(drr, abs=0.01)
    # Schroeder backward integration of the tail; slope of the -5..-25 dB part extrapolated to 60 dB
    edc = np.cumsum(h[1:][::-1] ** 2)[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    t = np.arange(len(edc_db)) / FS
    fit = (edc_db < -5) & (edc_db > -25)
    slope = np.polyfit(t[fit], edc_db[fit], 1)[0]
    assert -60 / slope == pytest.approx(rt60, rel=0.1)


def test_reverberate_keeps_length_alignment_and_level() -> None:
    s = _speech_like(1.0)
    rir = acoustics.room_impulse_response(0.5, 3.0, np.random.default_rng(6))
    y = acoustics.reverberate(s, rir)
    reference = np.convolve(s.astype(np.float64), rir.astype(np.float64))[: len(s)]
    reference *= np.sqrt(np.mean(s.astype(np.float64) ** 2) / np.mean(reference**2))
    np.testing.assert_allclose(y, reference, atol=1e-4)


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    p = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / FS)
    return float(np.sum(p[(f >= lo) & (f < hi)]))


def test_telephone_removes_everything_above_4_khz() -> None:
    s = _speech_like(2.0)
    y = acoustics.telephone(s)
    assert y.shape == s.shape
    total = _band_energy(y, 0, FS / 2)
    assert _band_energy(s, 4000, FS / 2) / _band_energy(s, 0, FS / 2) > 1e-3  # there was some
    assert _band_energy(y, 4000, FS / 2) / total < 1e-5
    assert _band_energy(y, 0, 150) / total < 1e-3
    assert _band_energy(y, 250, 3500) / total > 0.99
    assert _band_energy(y, 600, 3000) / _band_energy(s, 600, 3000) == pytest.approx(1.0, rel=0.05)


def test_mu_law_error_is_half_a_step_of_the_companded_scale() -> None:
    # x = ((1 + mu)^|y| - 1) / mu with y quantised in steps of 1/128, so |dx| <= (1/256) dx/dy
    # where dx/dy = ln(1 + mu) (1 + mu)^|y| / mu = ln(1 + mu) (1 + mu |x|) / mu, taken at the
    # larger end of the half step (hence the factor (1 + mu)^(1/256) below, rounded up).
    mu = 255.0
    x = np.linspace(-1, 1, 20001).astype(np.float32)
    err = np.abs(acoustics.mu_law(x).astype(np.float64) - x)
    slope = np.log1p(mu) * (1 + mu * np.abs(x)) / mu
    assert np.all(err <= slope * (1 + mu) ** (1 / 256) / 256 + 1e-6)
    assert err.max() > 0.015  # 8-bit companding is audible near full scale: it was applied
