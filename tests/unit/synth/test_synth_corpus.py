"""The generated corpus on disk: determinism across runs and worker counts, manifests, durations,
SNR of the noisy condition, telephone band, dataset card, and the overwrite rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from semiasr.data.synth import (
    CorpusCard,
    ensure_corpus,
    is_complete,
    iter_manifest,
    plan_corpus,
    synthesize_corpus,
)
from semiasr.data.synth.acoustics import snr_db
from semiasr.data.synth.espeak import Espeak
from semiasr.data.synth.plan import SNR_RANGE_DB, SPLITS
from semiasr.data.synth.render import apply_condition, babble_bank, clean_speech, render
from semiasr.errors import DataError

pytestmark = pytest.mark.slow
SCALE = 0.012
FIELDS = {
    "id": str, "audio": str, "text": str, "speaker": str, "duration": float, "sample_rate": int,
    "suggested_split": str, "domain": str, "condition": str, "voice": str, "generator": str,
    "labelled": bool,
}  # fmt: skip


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> CorpusCard:
    return synthesize_corpus(tmp_path_factory.mktemp("a") / "synth", 0, SCALE, 2, progress=False)


@pytest.fixture(scope="module")
def engine_and_bank() -> tuple[Espeak, np.ndarray]:
    engine = Espeak()
    return engine, babble_bank(0, engine)


def _records(card: CorpusCard) -> list[dict]:
    return [r for split in SPLITS for r in iter_manifest(card.path, split)]


def test_same_seed_gives_identical_bytes_for_any_worker_count(
    corpus: CorpusCard, tmp_path: Path
) -> None:
    again = synthesize_corpus(tmp_path / "b", 0, SCALE, workers=1, progress=False)
    assert _digest(corpus.path) == _digest(again.path)


def test_manifests_are_valid_and_durations_match_the_audio(corpus: CorpusCard) -> None:
    records = _records(corpus)
    assert len({r["id"] for r in records}) == len(records)
    for r in records:
        for key, kind in FIELDS.items():
            assert isinstance(r[key], kind), (r["id"], key)
        split = SPLITS[r["id"].rsplit("-", 1)[0]]
        assert r["audio"] == f"audio/{r['id'].rsplit('-', 1)[0]}/{r['id']}.wav"
        assert (r["domain"], r["labelled"], r["suggested_split"]) == (
            split.domain,
            split.labelled,
            split.suggested_split,
        )
        assert r["text"] == r["text"].upper() and r["text"].replace(" ", "").isalpha()
        info = sf.info(str(corpus.path / r["audio"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert r["sample_rate"] == 16000
        assert r["duration"] == pytest.approx(info.frames / 16000, abs=1e-6)
        assert 0.5 < r["duration"] < 20


def test_stored_audio_is_the_in_process_rendering(corpus: CorpusCard, engine_and_bank) -> None:
    engine, bank = engine_and_bank
    specs = {s.id: s for sp in plan_corpus(0, SCALE).values() for s in sp}
    for r in list(iter_manifest(corpus.path, "target_test"))[:3]:
        stored, _ = sf.read(str(corpus.path / r["audio"]), dtype="int16")
        np.testing.assert_array_equal(stored, render(specs[r["id"]], engine, bank))


def test_noisy_condition_snr_is_within_spec(corpus: CorpusCard, engine_and_bank) -> None:
    engine, bank = engine_and_bank
    specs = {s.id: s for sp in plan_corpus(0, SCALE).values() for s in sp}
    noisy = [r for r in _records(corpus) if r["condition"] == "noisy"]
    assert len(noisy) >= 3
    for r in noisy[:6]:
        spec = specs[r["id"]]
        speech = clean_speech(spec, engine)
        mixture = apply_condition(spec, speech, bank)
        measured = snr_db(speech, mixture.astype(np.float64) - speech)
        assert SNR_RANGE_DB[0] <= measured <= SNR_RANGE_DB[1]
        assert measured == pytest.approx(r["snr_db"], abs=0.05)
        # and the file on disk is that mixture, up to the final gain and 16-bit rounding
        stored, _ = sf.read(str(corpus.path / r["audio"]), dtype="float64")
        gain = np.dot(stored, mixture) / np.dot(mixture, mixture)
        assert snr_db(stored, stored - gain * mixture) > 60


def test_telephone_audio_has_no_energy_above_4_khz(corpus: CorpusCard) -> None:
    phone = [r for r in _records(corpus) if r["condition"] == "telephone"]
    clean = [r for r in _records(corpus) if r["condition"] == "clean"]
    assert phone and clean

    def high_fraction(r: dict) -> float:
        x, fs = sf.read(str(corpus.path / r["audio"]), dtype="float64")
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x), 1 / fs)
        return float(p[f > 4000].sum() / p.sum())

    assert max(high_fraction(r) for r in phone) < 1e-4
    assert min(high_fraction(r) for r in clean) > 1e-3  # synthetic speech does reach above 4 kHz


def test_card_describes_the_corpus(corpus: CorpusCard) -> None:
    card = json.loads((corpus.path / "card.json").read_text())
    assert card == corpus.data and card["seed"] == 0 and card["scale"] == SCALE
    for split in SPLITS:
        rows = list(iter_manifest(corpus.path, split))
        assert card["splits"][split]["utterances"] == len(rows)
        assert card["splits"][split]["hours"] == pytest.approx(
            sum(r["duration"] for r in rows) / 3600, abs=1e-4
        )
        assert card["splits"][split]["speakers"] == sorted({r["speaker"] for r in rows})
    train = set(
        card["splits"]["source_train"]["speakers"] + card["splits"]["target_train"]["speakers"]
    )
    assert train.isdisjoint(
        card["splits"]["source_test"]["speakers"] + card["splits"]["target_test"]["speakers"]
    )
    assert 0 < card["oov"]["target_tokens_vs_source"] < 1
    assert all(r["labelled"] is False for r in iter_manifest(corpus.path, "target_unlabelled"))
    assert "target_unlabelled" in (corpus.path / "README.md").read_text()


def test_overwrite_rules_and_interrupted_runs(tmp_path: Path) -> None:
    out = tmp_path / "c"
    synthesize_corpus(out, 0, 0.003, workers=1, progress=False)
    with pytest.raises(DataError, match="--force"):
        synthesize_corpus(out, 0, 0.003, workers=1, progress=False)
    assert ensure_corpus(out, 0, 0.003) == out  # reused as is
    with pytest.raises(DataError, match="scale"):
        ensure_corpus(out, 0, 0.004)
    (out / "card.json").unlink()  # as if interrupted before the card was written
    (out / "audio" / "source_train" / "junk.wav").write_bytes(b"x")
    assert not is_complete(out)
    ensure_corpus(out, 0, 0.003, workers=1, progress=False)
    assert is_complete(out) and not (out / "audio" / "source_train" / "junk.wav").exists()
    synthesize_corpus(out, 1, 0.003, workers=1, progress=False, force=True)
    assert CorpusCard.load(out).seed == 1
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="not a semiasr synthetic corpus"):
        synthesize_corpus(foreign, 0, 0.003, workers=1, progress=False, force=True)
    assert (foreign / "thesis.tex").read_text() == "precious"
