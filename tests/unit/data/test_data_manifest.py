"""Importers (semiasr JSONL, Kaldi, NeMo, folders) on generated and real files; every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from semiasr.data.manifest import (
    DataReport,
    import_folder,
    import_jsonl,
    import_kaldi_dir,
    import_nemo,
    load_manifest,
    validate_cuts,
    write_jsonl,
)
from semiasr.errors import DataError

from .conftest import tone


def _wav(path: Path, seconds: float = 1.0, sr: int = 16000, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, sr), sr, **kw)
    return path


def _rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _row(uid: str, audio: str, dur: float = 1.0, sr: int = 16000, **kw) -> dict:
    return {
        "id": uid,
        "audio": audio,
        "text": "HELLO",
        "speaker": "s",
        "duration": dur,
        "sample_rate": sr,
        **kw,
    }


def test_data_import_jsonl_synthetic_layout(make_corpus) -> None:
    root = make_corpus()
    cuts = load_manifest(root, "source_train")
    assert len(cuts) == 24
    c = cuts[0]
    assert c.custom["domain"] == "source" and c.custom["condition"] == "clean"
    assert c.custom["voice"] == "en-us"
    assert Path(c.recording.sources[0].source) == root / "audio" / f"{c.id}.wav"
    assert c.supervisions[0].speaker == "spk0"
    good = validate_cuts(cuts)
    assert len(good) == 24
    audio = c.load_audio()  # Lhotse reads it too
    assert audio.shape[1] == round(c.duration * 16000)


def test_data_import_kaldi_dir_with_segments(tmp_path: Path) -> None:
    _wav(tmp_path / "wav" / "rec1.wav", 3.0)
    _wav(tmp_path / "wav" / "rec2.flac", 1.0, format="FLAC")
    d = tmp_path / "kaldi"
    d.mkdir()
    (d / "wav.scp").write_text(f"rec1 {tmp_path}/wav/rec1.wav\nrec2 ../wav/rec2.flac\n")
    (d / "segments").write_text("u1 rec1 0.0 1.2\nu2 rec1 1.5 2.9\nu3 rec2 0 1.0\n")
    (d / "text").write_text("u1 HELLO WORLD\nu2 GOOD BYE\nu3 YES\n")
    (d / "utt2spk").write_text("u1 a\nu2 a\nu3 b\n")
    cuts = import_kaldi_dir(d)
    assert [c.id for c in cuts] == ["u1", "u2", "u3"]
    u2 = cuts[1]
    assert u2.start == 1.5 and u2.duration == pytest.approx(1.4)
    assert u2.supervisions[0].text == "GOOD BYE" and u2.supervisions[0].speaker == "a"
    assert u2.load_audio().shape[1] == round(1.4 * 16000)
    assert len(validate_cuts(cuts)) == 3
    assert len(load_manifest(d)) == 3
    # no segments: utterance = recording
    (d / "segments").unlink()
    (d / "wav.scp").write_text("rec2 ../wav/rec2.flac\n")
    (d / "text").write_text("rec2 YES\n")
    (c,) = import_kaldi_dir(d)
    assert c.duration == pytest.approx(1.0) and c.supervisions[0].speaker is None


def test_data_import_nemo(tmp_path: Path) -> None:
    _wav(tmp_path / "a.wav", 1.0, sr=8000)
    _wav(tmp_path / "b.wav", 2.0)
    m = tmp_path / "nemo.json"
    _rows(
        m,
        [
            {"audio_filepath": "a.wav", "duration": 1.0, "text": "one"},
            {
                "audio_filepath": str(tmp_path / "b.wav"),
                "duration": 0.5,
                "offset": 1.0,
                "text": "two",
                "lang": "en",
            },
        ],
    )
    cuts = import_nemo(m)
    assert [c.id for c in cuts] == ["a", "b_1.00"]
    assert cuts[0].recording.sampling_rate == 8000
    assert cuts[1].start == 1.0 and cuts[1].custom["lang"] == "en"
    assert len(load_manifest(m)) == 2  # sniffed as NeMo


def test_data_import_folder_all_formats(tmp_path: Path) -> None:
    d = tmp_path / "corpus"
    for name, fmt in (
        ("a.wav", "WAV"),
        ("spk1/b.flac", "FLAC"),
        ("spk1/c.sph", "NIST"),
        ("d.ogg", "OGG"),
    ):
        p = _wav(d / name, 0.5, format=fmt)
        p.with_suffix(".txt").write_text(f"TEXT {name.upper()}\n")
    cuts = import_folder(d)
    assert sorted(c.id for c in cuts) == ["a", "d", "spk1_b", "spk1_c"]
    by = {c.id: c for c in cuts}
    assert by["spk1_c"].supervisions[0].speaker == "spk1"
    assert by["spk1_c"].supervisions[0].text == "TEXT SPK1/C.SPH"
    assert len(validate_cuts(cuts)) == 4
    (d / "e.wav").write_bytes((d / "a.wav").read_bytes())  # no transcript
    with pytest.raises(DataError, match="e: no transcript"):
        import_folder(d)
    report = DataReport(skip_bad=True)
    assert len(import_folder(d, report=report)) == 4 and len(report.bad) == 1


def test_data_write_jsonl_round_trip(tmp_path: Path, make_corpus) -> None:
    cuts = load_manifest(make_corpus(), "target_test")
    out = tmp_path / "elsewhere" / "m.jsonl"
    out.parent.mkdir()
    assert write_jsonl(cuts, out) == 6
    again = import_jsonl(out)
    assert [c.id for c in again] == [c.id for c in cuts]
    assert again[0].custom["domain"] == "target"
    np.testing.assert_array_equal(again[0].load_audio(), cuts[0].load_audio())


def test_data_real_corpora(shared_data: Path) -> None:
    train = load_manifest(shared_data / "fsdd", "train")
    test = load_manifest(shared_data / "fsdd", "test")
    assert len(train) + len(test) == 3000
    assert {c.supervisions[0].speaker for c in test} == {"theo", "nicolas"}
    assert len(validate_cuts(test)) == len(test)
    yes = load_manifest(shared_data / "yesno" / "manifest.jsonl")
    assert len(validate_cuts(yes)) == 60
    assert set(" ".join(c.supervisions[0].text for c in yes).split()) == {"YES", "NO"}


def _bad_corpus(tmp_path: Path) -> Path:
    """One good utterance and one of each kind of bad one."""
    _wav(tmp_path / "good.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "garbage.wav").write_bytes(b"not audio" * 50)
    trunc = _wav(tmp_path / "t.wav", 2.0)
    trunc.write_bytes(trunc.read_bytes()[: 44 + 16000])
    _wav(tmp_path / "sr.wav", 1.0, sr=8000)
    _wav(tmp_path / "tiny.wav", 0.01)
    _wav(tmp_path / "long.wav", 3.0)
    return _rows(
        tmp_path / "m.jsonl",
        [
            _row("good", "good.wav"),
            _row("missing", "nope.wav"),
            _row("empty", "empty.wav"),
            _row("garbage", "garbage.wav"),
            _row("truncated", "t.wav", dur=2.0),
            _row("rate", "sr.wav"),
            _row("zero", "tiny.wav", dur=0.01),
            _row("long", "long.wav", dur=3.0),
            _row("good", "good.wav"),
        ],
    )


PROBLEMS = {
    "missing": "does not exist",
    "empty": "empty",
    "garbage": "unreadable",
    "truncated": "truncated",
    "rate": "8000 Hz, the manifest says 16000 Hz",
    "zero": "below",
    "long": "over the limit",
    "good": "duplicate",
}


@pytest.mark.parametrize("bad", sorted(PROBLEMS))
def test_data_each_bad_input_raises_naming_the_item(tmp_path: Path, bad: str) -> None:
    m = _bad_corpus(tmp_path)
    rows = [json.loads(line) for line in m.read_text().splitlines()]
    keep = [rows[0]] + [r for r in rows[1:] if r["id"] == bad]
    _rows(m, keep)
    cuts = import_jsonl(m, skip_bad=True) if bad == "good" else import_jsonl(m)
    with pytest.raises(DataError, match=f"{bad}: .*{PROBLEMS[bad]}"):
        if bad == "good":
            import_jsonl(m)
        validate_cuts(cuts, max_duration=2.5)


def test_data_skip_bad_counts_and_lists(tmp_path: Path) -> None:
    m = _bad_corpus(tmp_path)
    with m.open("a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"id": "nofields", "audio": "good.wav"}) + "\n")
    report = DataReport(skip_bad=True)
    cuts = validate_cuts(import_jsonl(m, report=report), max_duration=2.5, report=report)
    assert [c.id for c in cuts] == ["good"]
    items = [item for item, _ in report.bad]
    assert sorted(items) == sorted(
        [*(k for k in PROBLEMS if k != "good"), "good", "nofields", f"{m}:10"]
    )
    summary = report.summary()
    assert summary.startswith("10 bad item(s) skipped") and "lacks field(s) text" in summary


def test_data_load_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_manifest(tmp_path / "none.jsonl")
    with pytest.raises(DataError, match="found no manifest for split 'train'"):
        load_manifest(tmp_path, "train")


def test_data_each_importer_on_real_audio(tmp_path: Path, shared_data: Path) -> None:
    yesno = shared_data / "yesno"
    rows = [json.loads(x) for x in (yesno / "manifest.jsonl").read_text().splitlines()][:4]
    wavs = {r["id"]: (yesno / r["audio"]).resolve() for r in rows}
    texts = {r["id"]: r["text"] for r in rows}
    # Kaldi dir: the first recording cut into two segments
    k = tmp_path / "kaldi"
    k.mkdir()
    (k / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in wavs.items()))
    first = rows[0]["id"]
    segs = [(f"{first}-a", first, 0.0, 2.0), (f"{first}-b", first, 2.0, 4.0)]
    (k / "segments").write_text("".join(f"{s} {r} {a} {b}\n" for s, r, a, b in segs))
    (k / "text").write_text(f"{first}-a NO NO\n{first}-b NO NO\n")
    kc = validate_cuts(import_kaldi_dir(k))
    full = sf.read(wavs[first], dtype="float32")[0]
    np.testing.assert_allclose(kc[1].load_audio()[0], full[16000:32000], atol=1e-6)
    # NeMo
    nemo = _rows(
        tmp_path / "nemo.json",
        [
            {"audio_filepath": str(p), "duration": sf.info(p).duration, "text": texts[u]}
            for u, p in wavs.items()
        ],
    )
    nc = validate_cuts(import_nemo(nemo))
    assert sorted(c.id for c in nc) == sorted(wavs)
    # folder of audio + .txt
    f = tmp_path / "folder"
    f.mkdir()
    for u, p in wavs.items():
        (f / f"{u}.wav").symlink_to(p)
        (f / f"{u}.txt").write_text(texts[u])
    fc = validate_cuts(import_folder(f))
    by = {c.id: c for c in fc}
    for u in wavs:
        assert by[u].supervisions[0].text == texts[u]
        assert by[u].duration == pytest.approx(
            next(r["duration"] for r in rows if r["id"] == u), abs=0.01
        )
        np.testing.assert_array_equal(
            by[u].load_audio(), nc[[c.id for c in nc].index(u)].load_audio()
        )


def _stereo(path: Path, sr: int = 16000) -> tuple[Path, np.ndarray, np.ndarray]:
    """A 1-s stereo file: 440 Hz on the left channel, 1 kHz on the right."""
    t = np.arange(sr) / sr
    left, right = 0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1000 * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([left, right], 1).astype(np.float32), sr)
    return path, left, right


def test_data_jsonl_channel_zero_of_a_stereo_file_is_that_channel(tmp_path: Path) -> None:
    """ "channel": 0 reads the left channel (it averaged both), also after write_jsonl and a
    re-import; no "channel" averages them; a channel the file lacks is refused by name."""
    from semiasr.data.config import DataConfig
    from semiasr.data.loader import build_dataloader

    _, left, right = _stereo(tmp_path / "st.wav")
    m = _rows(
        tmp_path / "train.jsonl",
        [
            _row("zero", "st.wav", channel=0),
            _row("one", "st.wav", channel=1),
            _row("mix", "st.wav"),
        ],
    )
    again = tmp_path / "again" / "train.jsonl"
    write_jsonl(import_jsonl(m), again)
    assert [json.loads(x).get("channel") for x in again.read_text().splitlines()] == [0, 1, None]
    for manifest in (m, again):
        cfg = DataConfig(root=str(manifest.parent), train=["train"])
        cfg.features.level_db = None  # the raw waveform
        loader = build_dataloader(cfg, cfg.train, None, train=False, labels=False)
        waves = {cid: loader.maker.wave(i, None) for i, cid in enumerate(loader.table.ids)}
        np.testing.assert_allclose(waves["zero"], left, atol=1e-4)
        np.testing.assert_allclose(waves["one"], right, atol=1e-4)
        np.testing.assert_allclose(waves["mix"], (left + right) / 2, atol=1e-4)
    _wav(tmp_path / "mono.wav")
    bad = _rows(tmp_path / "bad.jsonl", [_row("beyond", "mono.wav", channel=1)])
    with pytest.raises(
        DataError, match=r"beyond: .*has 1 channel\(s\); the manifest asks for channel 1"
    ):
        validate_cuts(import_jsonl(bad))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("start", "abc", "could not convert"),
        ("start", None, "not 'NoneType'"),
        ("start", -1.0, "start -1.0 is not a number >= 0"),
        ("channel", "left", "invalid literal"),
        ("channel", -1, "channel -1 is negative"),
    ],
)
def test_data_jsonl_bad_start_or_channel_names_the_item(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    _wav(tmp_path / "a.wav")
    m = _rows(tmp_path / "m.jsonl", [_row("good", "a.wav"), _row("bad", "a.wav", **{field: value})])
    with pytest.raises(DataError, match=f"bad: .*{message}"):
        import_jsonl(m)
    assert [c.id for c in import_jsonl(m, skip_bad=True)] == ["good"]


def test_data_kaldi_and_nemo_bad_fields_name_the_item_and_can_be_skipped(tmp_path: Path) -> None:
    _wav(tmp_path / "a.wav", 2.0)
    k = tmp_path / "kaldi"
    k.mkdir()
    (k / "wav.scp").write_text(f"rec1 {tmp_path / 'a.wav'}\n")
    (k / "text").write_text("u1 YES\nu2 NO\n")
    (k / "segments").write_text("u1 rec1 0.0 0.5\nu2 rec1 0.5\n")
    with pytest.raises(DataError, match=r"u2: .*segments: line 'u2' needs"):
        import_kaldi_dir(k)
    assert [c.id for c in import_kaldi_dir(k, skip_bad=True)] == ["u1"]
    nemo = tmp_path / "nemo.json"
    rows = [
        {"audio_filepath": "a.wav", "duration": 0.5, "text": "X", "offset": 0.5, "id": "ok"},
        {"audio_filepath": "a.wav", "duration": 0.5, "text": "X", "offset": "x", "id": "off"},
        {"audio_filepath": "a.wav", "duration": 0.5, "text": "X", "speaker": None, "id": "nul"},
    ]
    _rows(nemo, rows)
    with pytest.raises(DataError, match="off: bad field value offset"):
        import_nemo(nemo)
    cuts = import_nemo(nemo, skip_bad=True)
    assert [c.id for c in cuts] == ["ok_0.50", "nul"]
    assert [c.supervisions[0].speaker for c in cuts] == [None, None]  # null: no speaker
