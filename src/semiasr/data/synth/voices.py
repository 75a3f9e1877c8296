"""The voices of the synthetic corpus: eSpeak NG accent + variant + speaking rate + pitch.

A voice bank holds, for each of the six English accents, three training voices and one test voice,
all with distinct accent+variant timbres, so test voices are never heard in training (24 voices:
18 train, 6 test). Rates are 140..200 words per minute, pitches 20..80 (eSpeak's 0..100 scale).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

from semiasr.data.synth.espeak import BASE_VOICES, VARIANTS

__all__ = ["VoiceSpec", "voice_bank"]

_ACCENTS = {
    "en-us": "US",
    "en": "British",
    "en-gb-scotland": "Scottish",
    "en-gb-x-rp": "British RP",
    "en-029": "Caribbean",
    "en-us-nyc": "New York",
}
TRAIN_PER_ACCENT = 3
TEST_PER_ACCENT = 1


@dataclass(frozen=True)
class VoiceSpec:
    """One synthetic speaker. ``id`` is the manifest's ``speaker``; ``name`` the eSpeak voice."""

    id: str
    name: str
    accent: str
    rate_wpm: int
    pitch: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def voice_bank(seed: int) -> tuple[list[VoiceSpec], list[VoiceSpec]]:
    """(train voices, test voices) for a corpus seed; no accent+variant is in both lists."""
    rng = random.Random(f"semiasr-synth-voices-{seed}")
    train: list[VoiceSpec] = []
    test: list[VoiceSpec] = []
    for base in BASE_VOICES:
        variants = rng.sample(VARIANTS, TRAIN_PER_ACCENT + TEST_PER_ACCENT)
        for k, variant in enumerate(variants):
            pool = train if k < TRAIN_PER_ACCENT else test
            voice_id = f"{'tr' if pool is train else 'te'}{len(pool):02d}-{base}+{variant}"
            pool.append(
                VoiceSpec(
                    id=voice_id,
                    name=f"{base}+{variant}",
                    accent=_ACCENTS[base],
                    rate_wpm=rng.randrange(140, 201, 5),
                    pitch=rng.randrange(20, 81, 5),
                )
            )
    return train, test
