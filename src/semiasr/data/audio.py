"""Audio input: read a file (or a slice of it), mix to mono, resample, normalise the level.

Formats are whatever libsndfile reads through ``soundfile``: WAV, FLAC, OGG/Vorbis, and uncompressed
NIST sphere among them. Resampling uses ``soxr`` (high quality). Every function returns float32 mono
samples, shape ``(N,)``, in [-1, 1] before level normalisation. Problems raise
:class:`~semiasr.errors.DataError` naming the file or utterance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from semiasr.errors import DataError

__all__ = [
    "AudioInfo",
    "audio_info",
    "normalize_level",
    "read_audio",
    "resample",
]


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says: sample rate, frame count, channels."""

    sample_rate: int
    frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def audio_info(path: str | Path, *, item: str | None = None) -> AudioInfo:
    """Header of an audio file; a missing, empty or unreadable file raises DataError."""
    name = item or str(path)
    p = Path(path)
    if not p.is_file():
        raise DataError(f"audio file {p} does not exist", item=name)
    if p.stat().st_size == 0:
        raise DataError(f"audio file {p} is empty (0 bytes)", item=name)
    try:
        info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError) as e:
        raise DataError(f"audio file {p} is unreadable ({e})", item=name) from e
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


def read_audio(
    path: str | Path,
    *,
    start: float = 0.0,
    duration: float | None = None,
    expected_sample_rate: int | None = None,
    target_sample_rate: int | None = None,
    channel: int | None = None,
    item: str | None = None,
) -> np.ndarray:
    """Read ``duration`` seconds from ``start``; mono float32 ``(N,)`` at ``target_sample_rate``.

    ``channel`` selects one channel; ``None`` averages all channels. A sample rate other than
    ``expected_sample_rate``, a file shorter than the slice asked for (truncated), no samples at
    all, or non-finite samples raise DataError.
    """
    name = item or str(path)
    try:
        with sf.SoundFile(str(path)) as f:
            sr = int(f.samplerate)
            if expected_sample_rate is not None and sr != int(expected_sample_rate):
                raise DataError(
                    f"sample rate of {path} is {sr} Hz, "
                    f"the manifest says {expected_sample_rate} Hz",
                    item=name,
                )
            first = round(start * sr)
            want = f.frames - first if duration is None else round(duration * sr)
            if first > 0:
                f.seek(first)
            x = f.read(frames=max(want, 0), dtype="float32", always_2d=True)
    except DataError:
        raise
    except FileNotFoundError as e:
        raise DataError(f"audio file {path} does not exist", item=name) from e
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        reason = "does not exist" if not Path(path).exists() else f"is unreadable ({e})"
        raise DataError(f"audio file {path} {reason}", item=name) from e
    _check_length(x.shape[0], want, sr, path, name)
    if channel is not None and not 0 <= channel < x.shape[1]:
        raise DataError(
            f"audio file {path} has {x.shape[1]} channel(s); the manifest asks for channel "
            f"{channel}",
            item=name,
        )
    mono = x[:, channel] if channel is not None else x.mean(axis=1, dtype=np.float32)
    if not np.isfinite(mono).all():
        raise DataError(f"audio file {path} holds non-finite samples (NaN or inf)", item=name)
    if target_sample_rate is not None and target_sample_rate != sr:
        mono = resample(mono, sr, target_sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _check_length(got: int, want: int, sr: int, path: str | Path, name: str) -> None:
    if got == 0:
        raise DataError(f"audio file {path} holds no samples", item=name)
    # Manifests round durations to the millisecond or so: allow 20 ms of slack.
    if got < want - max(2, int(0.02 * sr)):
        raise DataError(
            f"audio file {path} is truncated: {got / sr:.3f} s read, {want / sr:.3f} s expected",
            item=name,
        )


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr: ``(N,)`` → ``(≈ N · to_rate / from_rate,)``."""
    if from_rate == to_rate:
        return x
    return soxr.resample(x, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def normalize_level(
    x: np.ndarray, target_db: float = -25.0, *, max_gain_db: float = 40.0
) -> np.ndarray:
    """Scale ``x`` to an RMS level of ``target_db`` dBFS: ``x · 10^((target − 20 log10 rms)/20)``.

    The gain is capped at ``max_gain_db`` (digital silence stays silence) and the result is limited
    so that no sample exceeds full scale.
    """
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    if rms <= 0.0:
        return x
    gain_db = min(target_db - 20.0 * math.log10(rms), max_gain_db)
    y = x * np.float32(10.0 ** (gain_db / 20.0))
    peak = float(np.max(np.abs(y)))
    if peak > 1.0:
        y = y / np.float32(peak)
    return y.astype(np.float32, copy=False)
