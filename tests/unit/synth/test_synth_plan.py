"""The corpus plan: sizes, voices held out, determinism, conditions."""

from __future__ import annotations

from collections import Counter

import pytest

from semiasr.data.synth.espeak import BASE_VOICES, VARIANTS
from semiasr.data.synth.plan import (
    DOMAIN_CONDITIONS,
    SNR_RANGE_DB,
    SPLITS,
    plan_corpus,
    predicted_seconds,
)
from semiasr.data.synth.voices import voice_bank


def test_voice_bank_holds_out_test_timbres() -> None:
    train, test = voice_bank(0)
    assert len(train) + len(test) >= 10 and len(test) >= 3
    assert {v.name for v in train}.isdisjoint(v.name for v in test)
    assert {v.id for v in train}.isdisjoint(v.id for v in test)
    for v in train + test:
        base, variant = v.name.split("+")
        assert base in BASE_VOICES and variant in VARIANTS
        assert 0 <= v.pitch <= 100 and 80 <= v.rate_wpm <= 450
    assert {v.name.split("+")[0] for v in test} == set(BASE_VOICES)  # every accent is tested


def test_plan_keeps_test_voices_and_sentences_out_of_training() -> None:
    plan = plan_corpus(seed=3, scale=0.1)
    train_speakers = {
        s.voice.id for n, sp in plan.items() if SPLITS[n].voices == "train" for s in sp
    }
    train_texts = {s.text for n, sp in plan.items() if SPLITS[n].voices == "train" for s in sp}
    for name in ("source_test", "target_test"):
        assert train_speakers.isdisjoint(s.voice.id for s in plan[name])
        assert train_texts.isdisjoint(s.text for s in plan[name])


def test_plan_is_deterministic_and_seed_dependent() -> None:
    a, b, c = plan_corpus(0, 0.05), plan_corpus(0, 0.05), plan_corpus(1, 0.05)
    assert a == b
    assert [s.text for s in a["source_train"]] != [s.text for s in c["source_train"]]


def test_plan_sizes_follow_scale_and_labels() -> None:
    plan = plan_corpus(0, 0.2)
    for name, split in SPLITS.items():
        predicted = sum(predicted_seconds(s.text, s.rate_wpm) for s in plan[name])
        budget = split.hours * 3600 * 0.2
        assert budget <= predicted < budget + 10.0, name
        assert all(s.labelled == split.labelled and s.domain == split.domain for s in plan[name])
    assert len({s.id for sp in plan.values() for s in sp}) == sum(len(sp) for sp in plan.values())


@pytest.mark.parametrize("domain", ["source", "target"])
def test_conditions_follow_the_domain_mixture(domain: str) -> None:
    plan = plan_corpus(0, 1.0)
    specs = [s for n, sp in plan.items() if SPLITS[n].domain == domain for s in sp]
    counts = Counter(s.condition for s in specs)
    for condition, p in DOMAIN_CONDITIONS[domain].items():
        assert abs(counts[condition] / len(specs) - p) < 0.04, (condition, counts)
    noisy = [s for s in specs if s.condition == "noisy"]
    assert all(SNR_RANGE_DB[0] <= s.snr_db <= SNR_RANGE_DB[1] for s in noisy)
    assert {s.noise for s in noisy} == {"coloured", "babble", "mixed"}
