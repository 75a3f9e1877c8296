"""The plan of a synthetic corpus: every utterance's text, voice and acoustic condition, decided up
front from the seed, before any audio exists.

A plan is a pure function of ``(seed, scale)``; rendering each planned utterance is a pure function
of its :class:`UtteranceSpec`, so a corpus is reproducible byte for byte whatever the number of
worker processes. Split sizes are met by predicting each utterance's duration from its length in
letters and its speaking rate (``predicted_seconds``), so the realised hours differ from the
targets by a few percent; the card reports the realised ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from semiasr.data.synth.text import DOMAIN_GENERATORS, generate_text
from semiasr.data.synth.voices import VoiceSpec, voice_bank

__all__ = [
    "CONDITIONS",
    "DOMAIN_CONDITIONS",
    "SPLITS",
    "SplitSpec",
    "UtteranceSpec",
    "plan_corpus",
    "plan_split",
    "predicted_seconds",
]

CONDITIONS = ("clean", "noisy", "reverb", "telephone")
DOMAIN_CONDITIONS: dict[str, dict[str, float]] = {
    "source": {"clean": 0.8, "noisy": 0.1, "reverb": 0.1},
    "target": {"clean": 0.1, "noisy": 0.4, "reverb": 0.25, "telephone": 0.25},
}
"""Domain -> probability of each acoustic condition."""
SNR_RANGE_DB = (5.0, 20.0)
RT60_RANGE_S = (0.25, 0.9)
DRR_RANGE_DB = (-2.0, 8.0)
NOISE_KINDS = ("coloured", "babble", "mixed")
MAX_REDRAWS = 100


@dataclass(frozen=True)
class SplitSpec:
    """A split's domain, target size in hours (at scale 1), voice pool and label flag; ``dev``
    marks a development split (held-out voices like a test split, for tuning)."""

    domain: str
    hours: float
    voices: str  # "train" | "test"
    labelled: bool
    dev: bool = False

    @property
    def suggested_split(self) -> str:
        if self.dev:
            return "dev"
        return "test" if self.voices == "test" else "train"


SPLITS: dict[str, SplitSpec] = {
    "source_train": SplitSpec("source", 2.0, "train", True),
    "target_train": SplitSpec("target", 1.0 / 3.0, "train", True),
    "target_unlabelled": SplitSpec("target", 1.0, "train", False),
    "source_dev": SplitSpec("source", 0.25, "test", True, dev=True),
    "target_dev": SplitSpec("target", 0.25, "test", True, dev=True),
    "source_test": SplitSpec("source", 0.25, "test", True),
    "target_test": SplitSpec("target", 0.25, "test", True),
}
"""Every split draws from its own random stream (seeded by its name), so adding a split leaves the
others unchanged. Dev splits are spoken by the held-out (test) voices, in sentences that are neither
in training nor in a test split."""


@dataclass(frozen=True)
class UtteranceSpec:
    """Everything needed to render one utterance; ``seed`` drives its noise, RIR and noise floor."""

    id: str
    split: str
    domain: str
    generator: str
    text: str
    voice: VoiceSpec
    rate_wpm: int
    pitch: int
    condition: str
    seed: int
    lead_s: float
    trail_s: float
    peak: float
    labelled: bool = True
    snr_db: float | None = None
    noise: str | None = None
    noise_beta: float | None = None
    rt60_s: float | None = None
    drr_db: float | None = None

    @property
    def audio(self) -> str:
        """Path of the wav file relative to the corpus folder."""
        return f"audio/{self.split}/{self.id}.wav"


def predicted_seconds(text: str, rate_wpm: int) -> float:
    """Expected duration of the rendered utterance: eSpeak says about 5.5 letters per "word" at
    ``rate_wpm``, plus 0.47 s of padding and pauses (least-squares fit on a full-size corpus)."""
    letters = len(text.replace(" ", ""))
    return 0.47 + letters / 5.55 * 60.0 / rate_wpm


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _condition_fields(condition: str, rng: random.Random) -> dict[str, object]:
    if condition == "noisy":
        kind = rng.choice(NOISE_KINDS)
        beta = round(rng.uniform(0.0, 2.0), 3) if kind != "babble" else None
        snr = round(rng.uniform(*SNR_RANGE_DB), 2)
        return {"snr_db": snr, "noise": kind, "noise_beta": beta}
    if condition == "reverb":
        return {
            "rt60_s": round(rng.uniform(*RT60_RANGE_S), 3),
            "drr_db": round(rng.uniform(*DRR_RANGE_DB), 2),
        }
    return {}


def plan_split(
    name: str, seed: int, scale: float, avoid: frozenset[str] = frozenset()
) -> list[UtteranceSpec]:
    """The utterances of split ``name`` until their predicted durations reach its size x ``scale``
    (at least two utterances). Voices are used round-robin in a seeded order. Texts in ``avoid`` are
    redrawn (up to :data:`MAX_REDRAWS` times), so test sentences can be kept out of training."""
    split = SPLITS[name]
    rng = random.Random(f"semiasr-synth-{seed}-{name}")
    train_voices, test_voices = voice_bank(seed)
    voices = list(train_voices if split.voices == "train" else test_voices)
    rng.shuffle(voices)
    budget = split.hours * 3600.0 * scale
    specs: list[UtteranceSpec] = []
    total = 0.0
    while total < budget or len(specs) < 2:
        voice = voices[len(specs) % len(voices)]
        generator = _weighted(rng, DOMAIN_GENERATORS[split.domain])
        text = generate_text(generator, rng)
        for _ in range(MAX_REDRAWS):
            if text not in avoid:
                break
            text = generate_text(generator, rng)
        rate = max(80, round(voice.rate_wpm * rng.uniform(0.93, 1.07)))
        condition = _weighted(rng, DOMAIN_CONDITIONS[split.domain])
        spec = UtteranceSpec(
            id=f"{name}-{len(specs):05d}",
            split=name,
            domain=split.domain,
            generator=generator,
            text=text,
            voice=voice,
            rate_wpm=rate,
            pitch=min(99, max(0, voice.pitch + rng.randrange(-5, 6))),
            condition=condition,
            seed=rng.getrandbits(63),
            lead_s=round(rng.uniform(0.05, 0.3), 3),
            trail_s=round(rng.uniform(0.05, 0.3), 3),
            peak=round(rng.uniform(0.25, 0.9), 3),
            labelled=split.labelled,
            **_condition_fields(condition, rng),  # type: ignore[arg-type]
        )
        specs.append(spec)
        total += predicted_seconds(text, rate)
    return specs


def plan_corpus(seed: int = 0, scale: float = 1.0) -> dict[str, list[UtteranceSpec]]:
    """Every split's plan, keyed by split name (in :data:`SPLITS` order). Test splits avoid the
    sentences of every training split; dev splits those of every training and test split."""
    plan = {n: plan_split(n, seed, scale) for n, s in SPLITS.items() if s.voices == "train"}
    seen = frozenset(spec.text for specs in plan.values() for spec in specs)
    for name, split in SPLITS.items():
        if split.voices == "test" and not split.dev:
            plan[name] = plan_split(name, seed, scale, avoid=seen)
    tested = seen | {
        spec.text for name in plan if SPLITS[name].voices == "test" for spec in plan[name]
    }
    for name, split in SPLITS.items():
        if split.dev:
            plan[name] = plan_split(name, seed, scale, avoid=tested)
    return {name: plan[name] for name in SPLITS}
