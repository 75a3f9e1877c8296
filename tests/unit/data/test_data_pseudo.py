"""Pseudo labels (semiasr.tasks.pseudo) and manifest files as splits: the vote, the filters, the
written manifest, and training loaders that read it beside a corpus split."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from semiasr.data.config import DataConfig
from semiasr.data.loader import build_dataloader, corpus_texts
from semiasr.data.manifest import is_manifest_path, load_split, split_label
from semiasr.data.tokenizer import build_tokenizer
from semiasr.errors import ConfigError, DataError
from semiasr.eval.report import Utterance
from semiasr.tasks import pseudo
from semiasr.tasks.evaluate import report_folder
from semiasr.tasks.pseudo import pseudo_label, vote


def test_vote_majority_ties_and_share() -> None:
    assert vote(["A", "B", "A"]) == ("A", pytest.approx(2 / 3))
    assert vote(["B", "A"]) == ("B", 0.5)  # a tie goes to the first model
    assert vote(["C", "A", "B", "A", "B"]) == ("A", 0.4)  # A and B tie; A comes first
    assert vote(["X"]) == ("X", 1.0)
    with pytest.raises(ValueError):
        vote([])


def _fake_runs(monkeypatch, root: Path, hyps_per_run: list[dict[str, str]]) -> list[str]:
    """Runs whose "decoding" returns the given hypotheses (references from the manifest)."""
    cfg = SimpleNamespace(data=DataConfig(root=str(root)))
    runs = [f"run{i}" for i in range(len(hyps_per_run))]
    decoders = {r: SimpleNamespace(cfg=cfg, hyps=h) for r, h in zip(runs, hyps_per_run)}

    def fake_decode(dec, split, data_cfg=None, method="greedy", beam=4):
        cuts = load_split(data_cfg.root, split)
        utts = [Utterance(c.id, c.supervisions[0].text, dec.hyps[c.id]) for c in cuts]
        return utts, {"decode_s": 0.5}

    monkeypatch.setattr(pseudo, "load_trained", lambda run, which, device="cpu": decoders[str(run)])
    monkeypatch.setattr(pseudo, "decode_split", fake_decode)
    return runs


def test_pseudo_label_votes_filters_and_writes_a_manifest(make_corpus, monkeypatch) -> None:
    root = make_corpus({"source_train": 6, "target_unlabelled": 4})
    rows = [json.loads(x) for x in (root / "target_unlabelled.jsonl").read_text().splitlines()]
    for r in rows:
        r["labelled"] = False  # the text is kept for reports only
    (root / "target_unlabelled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ids = [r["id"] for r in rows]
    refs = {r["id"]: r["text"] for r in rows}
    runs = _fake_runs(
        monkeypatch,
        root,
        [
            {ids[0]: "YES", ids[1]: "NO", ids[2]: "ONE", ids[3]: ""},
            {ids[0]: "YES", ids[1]: "YES", ids[2]: "TWO", ids[3]: ""},
            {ids[0]: "YES", ids[1]: "NO", ids[2]: "FOUR", ids[3]: "FIVE"},
        ],
    )
    out = root.parent / "pl" / "pseudo.jsonl"
    s = pseudo_label(runs, "target_unlabelled", out, min_agreement=0.5)
    assert (s.utterances, s.written, s.dropped_empty, s.dropped_agreement) == (4, 2, 1, 1)
    assert s.mean_agreement == pytest.approx((1.0 + 2 / 3) / 2)
    assert s.decode_s == pytest.approx(1.5)
    written = [json.loads(x) for x in out.read_text().splitlines()]
    assert [w["id"] for w in written] == ids[:2]
    assert [w["text"] for w in written] == ["YES", "NO"]
    assert [w["pl_agreement"] for w in written] == [1.0, 0.6667]
    assert all("labelled" not in w for w in written)  # pseudo labels are labels
    for w, r in zip(written, rows):  # everything else of the row survives
        assert (out.parent / w["audio"]).resolve() == (root / r["audio"]).resolve()
        assert (w["speaker"], w["domain"], w["duration"]) == (
            r["speaker"],
            r["domain"],
            r["duration"],
        )
    # the reference WER of the voted labels (all four utterances, the dropped ones included)
    voted = ["YES", "NO", "ONE", ""]
    from semiasr.eval.wer import wer

    assert s.reference_wer == pytest.approx(wer([refs[i] for i in ids], voted))
    assert s.written_reference_wer == pytest.approx(wer([refs[i] for i in ids[:2]], voted[:2]))
    assert len(s.per_run_reference_wer) == 3 and s.not_decoded == 0

    # without a threshold only the empty hypothesis goes
    s0 = pseudo_label(runs, "target_unlabelled", out)
    assert (s0.written, s0.dropped_empty, s0.dropped_agreement) == (3, 1, 0)


def test_pseudo_label_refuses_bad_arguments(make_corpus, monkeypatch) -> None:
    root = make_corpus({"source_train": 3})
    with pytest.raises(ConfigError, match="at least one trained run"):
        pseudo_label([], "source_train", root / "x.jsonl")
    runs = _fake_runs(monkeypatch, root, [{}])
    with pytest.raises(ConfigError, match=r"min_agreement must lie in \[0, 1\]"):
        pseudo_label(runs, "source_train", root / "x.jsonl", min_agreement=1.5)


def test_a_manifest_file_is_a_split(make_corpus, tmp_path: Path) -> None:
    root = make_corpus({"source_train": 6, "target_test": 4})
    rows = [json.loads(x) for x in (root / "target_test.jsonl").read_text().splitlines()]
    pl = tmp_path / "pl" / "pseudo.jsonl"
    pl.parent.mkdir()
    for r in rows:
        r["audio"] = str((root / r["audio"]).resolve())
        r["text"] = "FIVE FIVE"
    pl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert is_manifest_path(str(pl)) and not is_manifest_path("target_test")
    assert split_label(str(pl)) == "manifest-pseudo" and split_label("target_test") == "target_test"
    assert split_label("runs/x/test.jsonl.gz") == "manifest-test"  # not the corpus split "test"
    assert report_folder(str(pl), "beam") == "manifest-pseudo-beam"

    cfg = DataConfig(root=str(root), train=["source_train", str(pl)])
    texts = corpus_texts(cfg, cfg.train)
    assert texts.count("FIVE FIVE") == 4 and len(texts) == 10
    tok = build_tokenizer(cfg, texts)
    loader = build_dataloader(cfg, cfg.train, tok, train=False)
    seen = {}
    for b in loader:
        for k, cid in enumerate(b.cut_ids):
            seen[cid] = tok.decode(b.tokens[k, : int(b.token_lengths[k])].tolist())
    assert len(seen) == 10
    assert all(seen[r["id"]] == "FIVE FIVE" for r in rows)

    with pytest.raises(DataError, match=r"names a manifest file, and .*missing\.jsonl does not"):
        load_split(root, str(tmp_path / "missing.jsonl"))


def _yes_no_corpus(tmp_path: Path, monkeypatch, runs_hyps: list[dict[str, str]] | None = None):
    """Two speakers say YES and NO four times each; one speaker's YES is the other's NO in pitch,
    so only a vote within each speaker is right. By default one run mislabels recording 1 of every
    word. Returns (rows, the runs' names, the devices load_trained was asked for)."""
    import soundfile as sf
    from tests.unit.data.conftest import tone

    from semiasr.data.config import FeatureConfig

    root = tmp_path / "corpus"
    (root / "audio").mkdir(parents=True)
    rows, hyps = [], {}
    pitch = {("s0", "YES"): 300.0, ("s0", "NO"): 1200.0, ("s1", "YES"): 1200.0, ("s1", "NO"): 300.0}
    for spk in ("s0", "s1"):
        for word in ("YES", "NO"):
            for i in range(4):
                uid = f"{spk}_{word}_{i}"
                x = tone(0.3 + 0.05 * i, 8000, freq=pitch[(spk, word)] * (1 + 0.01 * i), seed=i)
                sf.write(root / "audio" / f"{uid}.wav", x, 8000)
                rows.append(
                    {
                        "id": uid,
                        "audio": f"audio/{uid}.wav",
                        "text": word,
                        "speaker": spk,
                        "duration": len(x) / 8000,
                        "sample_rate": 8000,
                    }
                )
                hyps[uid] = ("NO" if word == "YES" else "YES") if i == 1 else word
    (root / "unlab.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = SimpleNamespace(
        data=DataConfig(root=str(root), features=FeatureConfig(sample_rate=8000, normalize="none"))
    )
    per_run = runs_hyps or [hyps]
    names = [f"r{i}" for i in range(len(per_run))]
    decoders = {
        n: SimpleNamespace(cfg=cfg, tokenizer=None, stats=None, hyps=h)
        for n, h in zip(names, per_run)
    }
    devices: list[str] = []

    def fake_load(run, which, device="cpu"):
        devices.append(device)
        return decoders[str(run)]

    def fake_decode(d, split, data_cfg=None, method="greedy", beam=4):
        cuts = load_split(data_cfg.root, split)
        return [Utterance(c.id, c.supervisions[0].text, d.hyps[c.id]) for c in cuts], {
            "decode_s": 0
        }

    monkeypatch.setattr(pseudo, "load_trained", fake_load)
    monkeypatch.setattr(pseudo, "decode_split", fake_decode)
    return rows, names, devices


def test_pseudo_label_neighbours_fix_labels_within_each_speaker(tmp_path, monkeypatch) -> None:
    rows, runs, devices = _yes_no_corpus(tmp_path, monkeypatch)
    out = tmp_path / "pl.jsonl"
    plain = pseudo_label(runs, "unlab", out)
    assert plain.reference_wer == pytest.approx(25.0) and plain.changed_by_neighbours == 0
    s = pseudo_label(runs, "unlab", out, neighbours=3, device="cuda:3")
    assert devices[-1] == "cuda:3"  # the models load where they were asked to
    assert s.model_vote_reference_wer == pytest.approx(25.0)
    assert s.reference_wer == 0.0 and s.changed_by_neighbours == 4 and s.neighbours == 3
    written = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert all(written[r["id"]]["text"] == r["text"] for r in rows)
    # pl_agreement: the neighbour vote's share of its 4 votes (3 of 4 agree in every word group)
    assert sorted(w["pl_agreement"] for w in written.values()) == [0.75] * 16
    # min_agreement filters on that share: above it, everything goes; at it, nothing does
    assert pseudo_label(runs, "unlab", out, neighbours=3, min_agreement=0.75).written == 16
    s_hi = pseudo_label(runs, "unlab", out, neighbours=3, min_agreement=0.8)
    assert (s_hi.written, s_hi.dropped_agreement) == (0, 16)
    with pytest.raises(ConfigError, match="neighbours must be 0"):
        pseudo_label(runs, "unlab", out, neighbours=-1)


def test_pseudo_label_neighbours_vote_after_the_models_and_fill_empty_hypotheses(
    tmp_path, monkeypatch
) -> None:
    """Three runs: the models' vote leaves one wrong label per word group (two runs wrong on
    recording 1) and one empty hypothesis (s0's YES 2: two runs gave nothing); the neighbour vote
    fixes the wrong ones and fills the empty one, which would otherwise be dropped."""
    truth = {f"{s}_{w}_{i}": w for s in ("s0", "s1") for w in ("YES", "NO") for i in range(4)}
    flip = {"YES": "NO", "NO": "YES"}
    r0 = {k: (flip[v] if k.endswith("_1") else v) for k, v in truth.items()}
    r1 = dict(r0)
    r2 = dict(truth)
    r0["s0_YES_2"] = r1["s0_YES_2"] = ""
    _rows, runs, _ = _yes_no_corpus(tmp_path, monkeypatch, [r0, r1, r2])
    out = tmp_path / "pl.jsonl"
    plain = pseudo_label(runs, "unlab", out)
    assert (plain.written, plain.dropped_empty) == (15, 1)
    s = pseudo_label(runs, "unlab", out, neighbours=3)
    assert (s.written, s.dropped_empty, s.changed_by_neighbours) == (16, 0, 5)
    assert s.reference_wer == 0.0


def test_pseudo_label_neighbours_without_speakers_vote_over_the_split(
    tmp_path, monkeypatch
) -> None:
    """With no speaker ids every utterance is one group: here one speaker's YES is the other's NO
    (the same tones), so a vote over everything cannot fix what the per-speaker vote fixes."""
    _rows, runs, _ = _yes_no_corpus(tmp_path, monkeypatch)
    root = tmp_path / "corpus"
    lines = [json.loads(x) for x in (root / "unlab.jsonl").read_text().splitlines()]
    for r in lines:
        r.pop("speaker")
    (root / "unlab.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    s = pseudo_label(runs, "unlab", tmp_path / "pl.jsonl", neighbours=3)
    assert s.reference_wer > 0.0  # per speaker: 0.0 (the test above)


def test_pseudo_label_refuses_an_oversized_neighbour_vote_before_decoding(
    tmp_path, monkeypatch
) -> None:
    _rows, runs, _ = _yes_no_corpus(tmp_path, monkeypatch)

    def no_decoding(*a, **k):
        raise AssertionError("decoded before refusing")

    monkeypatch.setattr(pseudo, "decode_split", no_decoding)
    monkeypatch.setattr(pseudo, "MAX_DTW_CELLS", 10)
    with pytest.raises(ConfigError, match="frame pairs"):
        pseudo_label(runs, "unlab", tmp_path / "pl.jsonl", neighbours=3)


@pytest.mark.parametrize("shift_ms", [10.0, 20.0])
def test_decode_split_times_the_audio_by_its_duration(make_corpus, shift_ms: float) -> None:
    """audio_s is the utterances' duration whatever the frame shift (frames × 10 ms halved it at
    a 20 ms shift), and the real-time factor is decode time over it."""
    import torch

    from semiasr.models import ModelConfig, build_model
    from semiasr.tasks.evaluate import Decoder, decode_split

    root = make_corpus({"source_train": 5})
    cfg = DataConfig(root=str(root), train=["source_train"])
    cfg.features.frame_shift_ms = shift_ms
    tok = build_tokenizer(cfg, corpus_texts(cfg, cfg.train))
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="ctc", preset="xs"), tok.vocab_size).eval()
    dec = Decoder(
        model, tok, SimpleNamespace(data=cfg, base_run=None), None, torch.device("cpu"), root
    )
    utts, timing = decode_split(dec, "source_train")
    durations = [json.loads(x)["duration"] for x in (root / "source_train.jsonl").open()]
    assert len(utts) == 5
    assert timing["audio_s"] == pytest.approx(sum(durations), abs=1e-3)
    assert timing["rtf"] == pytest.approx(timing["decode_s"] / timing["audio_s"])


def _closed_set_runs(monkeypatch, tmp_path: Path, scores: dict[str, list[float]]):
    """The YES/NO corpus of ``_yes_no_corpus`` with one run whose candidate log-likelihoods
    (NO, YES) are ``scores``."""
    _rows, runs, _ = _yes_no_corpus(tmp_path, monkeypatch)
    refs = {r["id"]: r["text"] for r in _rows}

    def fake_scores(dec, split, data_cfg, names):
        assert names == ["NO", "YES"]
        return {k: np.array(v) for k, v in scores.items()}, refs

    monkeypatch.setattr(pseudo, "candidate_list", lambda spec, dec: (["NO", "YES"], np.ones(2)))
    monkeypatch.setattr(pseudo, "candidate_scores", fake_scores)
    return runs, refs


def _shared_confusion_scores() -> dict[str, list[float]]:
    """Log-likelihoods (NO, YES): s0 is heard right; every one of s1's recordings is heard as NO,
    its YES recordings less surely (0.6) than its NO recordings (0.9)."""
    scores = {}
    for s in ("s0", "s1"):
        for w in ("YES", "NO"):
            for i in range(4):
                p_no = {"YES": 0.1, "NO": 0.9}[w] if s == "s0" else {"YES": 0.6, "NO": 0.9}[w]
                scores[f"{s}_{w}_{i}"] = [np.log(p_no + 0.01 * i), np.log(1 - p_no - 0.01 * i)]
    return scores


def test_pseudo_label_candidates_balance_undoes_a_speakers_shared_confusion(
    tmp_path, monkeypatch
) -> None:
    """Speaker s1's YES recordings all score as NO, less surely than s1's NO recordings: the
    closed-set argmax (and any vote) keeps the confusion; balancing s1's posteriors to the prior
    (equal shares) moves exactly those four to YES. s0 is right and stays right."""
    scores = _shared_confusion_scores()
    runs, refs = _closed_set_runs(monkeypatch, tmp_path, scores)
    out = tmp_path / "pl.jsonl"
    plain = pseudo_label(runs, "unlab", out, candidates="train")
    assert plain.closed_set_reference_wer == pytest.approx(25.0) == plain.reference_wer
    assert (plain.candidates, plain.balanced, plain.model_vote_reference_wer) == (2, False, None)
    s = pseudo_label(runs, "unlab", out, candidates="train", balance=True)
    assert s.reference_wer == 0.0 and s.closed_set_reference_wer == pytest.approx(25.0)
    written = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert all(written[k]["text"] == v for k, v in refs.items()) and len(written) == 16
    assert all(0.5 < w["pl_agreement"] <= 1.0 for w in written.values())  # the label's posterior
    with pytest.raises(ConfigError, match="balance needs candidates"):
        pseudo_label(runs, "unlab", out, balance=True)


def test_pseudo_label_candidates_neighbours_average_posteriors(tmp_path, monkeypatch) -> None:
    """Recording 1 of every word is scored as the other word: averaging each recording's
    posteriors with its 3 nearest of the same speaker (DTW of features) outvotes it."""
    scores = {
        f"{s}_{w}_{i}": ([0.0, -3.0] if (w == "NO") != (i == 1) else [-3.0, 0.0])
        for s in ("s0", "s1")
        for w in ("YES", "NO")
        for i in range(4)
    }
    runs, _ = _closed_set_runs(monkeypatch, tmp_path, scores)
    s = pseudo_label(runs, "unlab", tmp_path / "pl.jsonl", candidates="train", neighbours=3)
    assert s.closed_set_reference_wer == pytest.approx(25.0)
    assert s.reference_wer == 0.0 and s.changed_by_neighbours == 4


def test_candidate_list_from_the_training_transcripts_or_a_file(make_corpus, tmp_path) -> None:
    from semiasr.tasks.pseudo import candidate_list

    root = make_corpus({"source_train": 12})
    cfg = DataConfig(root=str(root), train=["source_train"])
    texts = corpus_texts(cfg, cfg.train)
    dec = SimpleNamespace(cfg=SimpleNamespace(data=cfg), tokenizer=build_tokenizer(cfg, texts))
    names, prior = candidate_list("train", dec)
    assert names == sorted(set(texts)) and prior.sum() == len(texts)
    assert prior.tolist() == [texts.count(n) for n in names]
    f = tmp_path / "cands.txt"
    a, b = names[0], names[1]  # extra spaces normalise away, as the tokenizer normalises
    f.write_text(f"  {a} \n\n{a.replace(' ', '  ')}\n{b}\n")
    assert candidate_list(str(f), dec)[0] == [a, b]
    assert candidate_list(str(f), dec)[1].tolist() == [2.0, 1.0]
    f.write_text("\n \n")
    with pytest.raises(ConfigError, match="no candidate"):
        candidate_list(str(f), dec)
    with pytest.raises(ConfigError, match="neither"):
        candidate_list(str(tmp_path / "missing.txt"), dec)


@pytest.mark.parametrize("kind", ["transducer", "ctc"])
def test_candidate_scores_are_the_models_sequence_log_likelihoods(make_corpus, kind: str) -> None:
    """candidate_scores against the loss of the full lattice: torch's ctc_loss for CTC, our
    rnnt_loss of the joiner's materialised logits for the transducer."""
    import torch

    from semiasr.functional import rnnt_loss
    from semiasr.models import ModelConfig, build_model
    from semiasr.tasks.evaluate import Decoder
    from semiasr.tasks.pseudo import candidate_scores

    root = make_corpus({"source_train": 4})
    cfg = DataConfig(root=str(root), train=["source_train"])
    tok = build_tokenizer(cfg, corpus_texts(cfg, cfg.train))
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind=kind, preset="xs"), tok.vocab_size).eval()
    run_cfg = SimpleNamespace(data=cfg, base_run=None)
    dec = Decoder(model, tok, run_cfg, None, torch.device("cpu"), root)
    names = sorted(set(corpus_texts(cfg, cfg.train)))[:3]
    scores, refs = candidate_scores(dec, "source_train", cfg, names)
    assert len(scores) == 4 and set(refs) == set(scores)
    loader = build_dataloader(cfg, ["source_train"], tok, train=False, labels=False)
    checked = 0
    with torch.no_grad():
        for b in loader:
            x = b.features
            for c, name in enumerate(names):
                ids = tok.encode(name)
                y = torch.tensor([ids] * len(b))
                yl = torch.full((len(b),), len(ids))
                out = model(x, b.feature_lengths, y, yl)
                if kind == "ctc":
                    ref = torch.nn.functional.ctc_loss(
                        out.log_probs.transpose(0, 1), y, out.lengths, yl, reduction="none"
                    )
                else:
                    ref = rnnt_loss(out.logits, y, out.lengths, yl, blank=0, reduction="none")
                for i, cid in enumerate(b.cut_ids):
                    assert scores[cid][c] == pytest.approx(-float(ref[i]), rel=1e-5, abs=1e-4)
                    checked += 1
    assert checked == 4 * len(names) and len(names) >= 2


def test_pseudo_label_candidates_counts_small_speakers_and_unscorable_utterances(
    tmp_path, monkeypatch
) -> None:
    """The shared-confusion scores of the balance test, plus: s0_YES_0 moved to a speaker of its
    own (a group smaller than the candidates is not balanced, with or without neighbours: the
    prior would decide its label), and s0_NO_0 unscorable by the run (every candidate −inf: no
    label, counted as empty, left out of its speaker's balance)."""
    scores = _shared_confusion_scores()
    scores["s0_NO_0"] = [-np.inf, -np.inf]
    runs, _ = _closed_set_runs(monkeypatch, tmp_path, scores)
    root = tmp_path / "corpus"
    lines = [json.loads(x) for x in (root / "unlab.jsonl").read_text().splitlines()]
    for r in lines:
        if r["id"] == "s0_YES_0":
            r["speaker"] = "alone"
    (root / "unlab.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    out = tmp_path / "pl.jsonl"
    for k in (0, 1):
        s = pseudo_label(runs, "unlab", out, candidates="train", balance=True, neighbours=k)
        written = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
        assert written["s0_YES_0"]["text"] == "YES"  # its own posterior, not the prior's
        assert "s0_NO_0" not in written and (s.written, s.dropped_empty) == (15, 1)
        assert s.balanced_speakers == 2 and s.changed_by_balance == 4
        assert s.reference_wer == pytest.approx(100 / 16)  # the unscorable one only
