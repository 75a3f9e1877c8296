"""Render a planned utterance to 16 kHz 16-bit audio, and the worker processes that do it in bulk.

    eSpeak NG (22,050 Hz, int16) -> soxr to 16 kHz -> pad lead/trail silence -> + noise floor
    (60..70 dB below the speech) -> condition (clean | noisy | reverb | telephone) -> scale to the
    planned peak -> int16, shape (T,)

Babble noise is cut from a bank of other synthesised speech (``babble_bank``), itself a pure
function of the corpus seed.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from semiasr.data.synth import acoustics
from semiasr.data.synth.espeak import BASE_VOICES, ESPEAK_SAMPLE_RATE, VARIANTS, Espeak
from semiasr.data.synth.plan import UtteranceSpec
from semiasr.data.synth.text import GENERATORS, generate_text
from semiasr.errors import DataError

__all__ = [
    "SAMPLE_RATE",
    "apply_condition",
    "babble_bank",
    "clean_speech",
    "render",
    "render_chunk",
    "worker_init",
]

SAMPLE_RATE = 16000
BABBLE_UTTERANCES = 24
FLOOR_DB_RANGE = (60.0, 70.0)


def to_16k(wav: np.ndarray) -> np.ndarray:
    """int16 samples at 22,050 Hz -> float32 in [-1, 1) at 16 kHz."""
    x = wav.astype(np.float32) / 32768.0
    return soxr.resample(x, ESPEAK_SAMPLE_RATE, SAMPLE_RATE, quality="HQ").astype(np.float32)


def clean_speech(spec: UtteranceSpec, engine: Espeak) -> np.ndarray:
    """The utterance's speech at 16 kHz with its lead/trail silence and a faint white noise floor
    (60..70 dB below the speech energy), float32, shape (T,)."""
    x = to_16k(engine.say(spec.text.lower(), spec.voice.name, spec.rate_wpm, spec.pitch))
    lead, trail = round(spec.lead_s * SAMPLE_RATE), round(spec.trail_s * SAMPLE_RATE)
    x = np.pad(x, (lead, trail))
    rng = np.random.default_rng([spec.seed, 1])
    floor = rng.standard_normal(len(x)).astype(np.float32)
    return acoustics.mix_at_snr(x, floor, rng.uniform(*FLOOR_DB_RANGE))


def apply_condition(spec: UtteranceSpec, speech: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """The planned acoustic condition applied to ``speech`` (float32, shape (T,))."""
    rng = np.random.default_rng([spec.seed, 2])
    if spec.condition == "clean":
        return speech
    if spec.condition == "noisy":
        return acoustics.mix_at_snr(speech, make_noise(spec, len(speech), bank, rng), spec.snr_db)
    if spec.condition == "reverb":
        rir = acoustics.room_impulse_response(spec.rt60_s, spec.drr_db, rng)
        return acoustics.reverberate(speech, rir)
    if spec.condition == "telephone":
        return acoustics.telephone(speech)
    raise DataError(f"unknown acoustic condition {spec.condition!r}", item=spec.id)


def make_noise(
    spec: UtteranceSpec, num_samples: int, bank: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The noise of a noisy utterance, unit RMS, shape (num_samples,)."""
    if spec.noise == "coloured":
        return acoustics.coloured_noise(num_samples, spec.noise_beta, rng)
    if spec.noise == "babble":
        return acoustics.babble_noise(num_samples, bank, rng)
    mixed = acoustics.coloured_noise(num_samples, spec.noise_beta, rng)
    mixed = mixed + acoustics.babble_noise(num_samples, bank, rng)
    return mixed / np.sqrt(2.0)


def render(spec: UtteranceSpec, engine: Espeak, bank: np.ndarray) -> np.ndarray:
    """The final int16 samples of ``spec`` at 16 kHz, shape (T,), peaking at ``spec.peak``."""
    y = apply_condition(spec, clean_speech(spec, engine), bank)
    y = y * (spec.peak / (float(np.max(np.abs(y))) + 1e-12))
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def babble_bank(seed: int, engine: Espeak) -> np.ndarray:
    """About a minute of other synthesised speech (random generators, accents and variants),
    each utterance trimmed of silence and scaled to unit RMS, concatenated: float32, shape (N,)."""
    rng = random.Random(f"semiasr-synth-babble-{seed}")
    pieces = []
    for _ in range(BABBLE_UTTERANCES):
        text = generate_text(rng.choice(sorted(GENERATORS)), rng).lower()
        voice = f"{rng.choice(BASE_VOICES)}+{rng.choice(VARIANTS)}"
        x = to_16k(engine.say(text, voice, rng.randrange(130, 211), rng.randrange(10, 91)))
        active = np.flatnonzero(np.abs(x) > 1e-3)
        x = x[active[0] : active[-1] + 1]
        pieces.append(x / np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return np.concatenate(pieces).astype(np.float32)


# ----------------------------------------------------------------------------- worker processes
_ENGINE: Espeak | None = None
_BANK: np.ndarray | None = None


def worker_init(bank: np.ndarray) -> None:
    """Pool initializer: one eSpeak handle and the babble bank per process."""
    global _ENGINE, _BANK
    _ENGINE = Espeak()
    _BANK = bank


def render_chunk(args: tuple[str, list[UtteranceSpec]]) -> list[tuple[str, int]]:
    """Render and write ``specs`` under ``out_dir``; returns ``(id, num_samples)`` per utterance."""
    out_dir, specs = args
    if _ENGINE is None or _BANK is None:
        raise RuntimeError("render_chunk called before worker_init")
    done = []
    for spec in specs:
        audio = render(spec, _ENGINE, _BANK)
        path = Path(out_dir) / spec.audio
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        done.append((spec.id, len(audio)))
    return done
