"""Audio reading, resampling and level normalisation; every bad file gives a DataError naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from semiasr.data.audio import audio_info, normalize_level, read_audio, resample
from semiasr.errors import DataError


def _sine(sr: int, seconds: float = 0.5, freq: float = 300.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype", "atol"),
    [
        (".wav", "WAV", "PCM_16", 1e-4),
        (".flac", "FLAC", "PCM_16", 1e-4),
        (".sph", "NIST", "PCM_16", 1e-4),
        (".ogg", "OGG", "VORBIS", 0.05),
    ],
)
def test_data_read_formats(
    tmp_path: Path, suffix: str, fmt: str, subtype: str, atol: float
) -> None:
    x = _sine(16000)
    p = tmp_path / f"a{suffix}"
    sf.write(p, x, 16000, format=fmt, subtype=subtype)
    y = read_audio(p, expected_sample_rate=16000)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=atol)
    assert audio_info(p).sample_rate == 16000


def test_data_read_mixes_stereo_and_slices(tmp_path: Path) -> None:
    left, right = _sine(8000, 1.0, 300), _sine(8000, 1.0, 500)
    p = tmp_path / "s.wav"
    sf.write(p, np.stack([left, right], 1), 8000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(p), (left + right) / 2, atol=1e-6)
    np.testing.assert_allclose(read_audio(p, channel=1), right, atol=1e-7)
    y = read_audio(p, start=0.25, duration=0.5)
    np.testing.assert_allclose(y, (left + right)[2000:6000] / 2, atol=1e-6)


def test_data_resample_keeps_the_tone() -> None:
    x = _sine(8000, 1.0, 440.0)
    y = resample(x, 8000, 16000)
    assert abs(y.shape[0] - 16000) <= 1
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / y.shape[0] - 440.0) < 2.0
    assert resample(x, 8000, 8000) is x


def test_data_level_normalisation_equalises_speakers() -> None:
    x = _sine(8000)
    quiet = x * 0.01  # 40 dB below
    for sig in (x, quiet):
        y = normalize_level(sig, -25.0)
        rms_db = 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
        assert rms_db == pytest.approx(-25.0, abs=0.01)
    assert np.all(normalize_level(np.zeros(100, np.float32)) == 0)
    loud = np.ones(100, np.float32) * 0.1
    loud[0] = 1.0
    assert np.abs(normalize_level(loud, 0.0)).max() <= 1.0


def test_data_bad_audio_files(tmp_path: Path) -> None:
    x = _sine(16000, 1.0)
    good = tmp_path / "good.wav"
    sf.write(good, x, 16000)
    with pytest.raises(DataError, match=r"utt1: .*does not exist"):
        read_audio(tmp_path / "missing.wav", item="utt1")
    with pytest.raises(DataError, match=r"utt1: .*does not exist"):
        audio_info(tmp_path / "missing.wav", item="utt1")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty"):
        audio_info(empty, item="e")
    with pytest.raises(DataError, match=r"e: .*unreadable"):
        read_audio(empty, item="e")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(DataError, match=r"g: .*unreadable"):
        audio_info(garbage, item="g")
    trunc = tmp_path / "trunc.wav"
    trunc.write_bytes(good.read_bytes()[: 44 + 16000])  # half the samples
    with pytest.raises(DataError, match=r"t: .*truncated"):
        read_audio(trunc, duration=1.0, item="t")
    header_only = tmp_path / "header.wav"
    header_only.write_bytes(good.read_bytes()[:44])
    with pytest.raises(DataError, match=r"h: .*no samples"):
        read_audio(header_only, item="h")
    with pytest.raises(DataError, match=r"r: .*16000 Hz, the manifest says 8000 Hz"):
        read_audio(good, expected_sample_rate=8000, item="r")
    nan = tmp_path / "nan.wav"
    bad = x.copy()
    bad[10] = np.nan
    sf.write(nan, bad, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"n: .*non-finite"):
        read_audio(nan, item="n")
