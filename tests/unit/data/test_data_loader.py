"""The loader end to end on generated corpora (and FSDD): Batch contents, domains, mid-epoch resume,
DDP sharding, worker-independence, skip_bad at load time, global normalisation."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from semiasr.data.batch import Batch
from semiasr.data.config import AugmentConfig, BatchingConfig, DataConfig, FeatureConfig
from semiasr.data.loader import build_dataloader, corpus_texts, domain_map, normalize_features
from semiasr.data.tokenizer import build_tokenizer
from semiasr.errors import ConfigError, DataError


def _cfg(root: Path, **kw) -> DataConfig:
    aug = AugmentConfig(
        speed_perturb=True, noise_snr_db=[5.0, 20.0], reverb_prob=0.5, telephone_prob=0.2
    )
    cfg = DataConfig(
        root=str(root),
        train=["source_train"],
        augment=aug,
        batching=BatchingConfig(max_duration=4.0, num_buckets=3),
    )
    return replace(cfg, **kw)


def _tok(cfg: DataConfig, splits: tuple[str, ...] = ("source_train", "target_test")):
    return build_tokenizer(cfg, corpus_texts(cfg, list(splits)))


def _same(a: Batch, b: Batch) -> None:
    assert a.cut_ids == b.cut_ids
    torch.testing.assert_close(a.features, b.features, atol=0, rtol=0)
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.feature_lengths, b.feature_lengths)


def test_data_loader_batches(make_corpus) -> None:
    cfg = _cfg(make_corpus())
    tok = _tok(cfg)
    loader = build_dataloader(cfg, ["source_train", "target_test"], tok, train=True, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) > 1
    ids = [i for b in batches for i in b.cut_ids]
    assert sorted(ids) == sorted(loader.table.ids) and len(ids) == 30
    for b in batches:
        assert b.features.dtype == torch.float32 and b.features.shape[2] == 80
        assert torch.isfinite(b.features).all()
        assert b.feature_lengths.max() == b.features.shape[1]
        for k in range(len(b)):
            n = int(b.token_lengths[k])
            assert tok.decode(b.tokens[k, :n].tolist()) == b.texts[k]
            assert torch.all(b.tokens[k, n:] == 0) and torch.all(b.tokens[k, :n] > 0)
            assert int(b.domains[k]) == (0 if b.cut_ids[k].startswith("source") else 1)
            assert torch.all(b.features[k, b.feature_lengths[k] :] == 0)
        assert {s[:3] for s in b.speakers} == {"spk"}


def test_data_eval_loader_is_plain_and_normalised(make_corpus) -> None:
    cfg = _cfg(make_corpus())
    loader = build_dataloader(cfg, ["target_test"], _tok(cfg), train=False)
    first, second = list(loader), list(loader)
    assert len(first) > 1
    durs = dict(zip(loader.table.ids, loader.table.durations))
    seen = []
    for b, b2 in zip(first, second):
        _same(b, b2)  # evaluation: no augmentation, two passes are identical
        for k, cid in enumerate(b.cut_ids):
            f = b.features[k, : b.feature_lengths[k]].double()
            zeros = torch.zeros(80, dtype=torch.float64)
            torch.testing.assert_close(f.mean(0), zeros, atol=1e-4, rtol=0)
            assert int(b.feature_lengths[k]) == 1 + (round(durs[cid] * 16000) - 400) // 160
            seen.append(durs[cid])
    assert seen == sorted(seen)  # shortest first


def test_data_eval_loader_restarts_after_a_pass_left_part_way(make_corpus) -> None:
    """Validation reads the first ``limit_batches`` batches every time: a pass that stopped early
    must not move the next pass's start (best.pt compares these WERs)."""
    cfg = _cfg(make_corpus(), batching=BatchingConfig(max_duration=1.5, num_buckets=1))
    loader = build_dataloader(cfg, ["source_train"], _tok(cfg), train=False)
    full = list(loader)
    assert len(full) > 3
    for stop in (1, 2):
        for k, _ in enumerate(loader):
            if k == stop:
                break
        again = list(loader)
        assert len(again) == len(full)
        for a, b in zip(again, full):
            _same(a, b)


def test_data_domains_beyond_source_and_target(make_corpus) -> None:
    """Without data.domains a loader numbers extra names among its own splits' names only (one
    name can get other ids in two loaders), so MDA over more than two domains refuses to train
    without the mapping; with it, every loader gives a name the same id."""
    from types import SimpleNamespace

    from semiasr.tasks.adapt import check_mda_domains

    root = make_corpus({"source_train": 6, "clean_train": 3, "noisy_test": 3})
    cfg = _cfg(root, train=["source_train", "clean_train"])

    def ids(cfg: DataConfig, splits: list[str]) -> dict[str, int]:
        loader = build_dataloader(cfg, splits, None, train=False, labels=False)
        return {c: int(d) for b in loader for c, d in zip(b.cut_ids, b.domains)}

    assert set(ids(cfg, ["clean_train", "noisy_test"]).values()) == {2, 3}
    assert set(ids(cfg, ["noisy_test"]).values()) == {2}  # noisy: 3 above, 2 here
    mda = SimpleNamespace(method="mda", num_domains=4)
    with pytest.raises(ConfigError, match=r"MDA over 4 domains needs data\.domains"):
        check_mda_domains(SimpleNamespace(adapt=mda, data=cfg))
    mapping = {"source": 0, "target": 1, "clean": 2, "noisy": 3}
    cfg = replace(cfg, domains=mapping)
    check_mda_domains(SimpleNamespace(adapt=mda, data=cfg))
    both, test = ids(cfg, ["clean_train", "noisy_test"]), ids(cfg, ["noisy_test"])
    assert set(test.values()) == {3} and {both[c] for c in test} == {3}
    assert {v for c, v in both.items() if c.startswith("clean")} == {2}


def test_data_resume_with_other_batching_warns(make_corpus, caplog) -> None:
    """The saved position counts batches of the saved plan: with another max_duration it points
    elsewhere, so resuming says which settings changed (same settings: no warning)."""
    cfg = _cfg(make_corpus())
    first = build_dataloader(cfg, ["source_train"], None, train=True, seed=7, labels=False)
    first.set_epoch(1)
    next(iter(first))
    state = json.loads(json.dumps(first.state_dict()))
    with caplog.at_level(logging.WARNING, logger="semiasr"):
        build_dataloader(
            cfg, ["source_train"], None, train=True, seed=7, labels=False
        ).load_state_dict(state)
    assert "batching settings" not in caplog.text
    other = replace(cfg, batching=BatchingConfig(max_duration=2.0, num_buckets=3))
    with caplog.at_level(logging.WARNING, logger="semiasr"):
        build_dataloader(
            other, ["source_train"], None, train=True, seed=7, labels=False
        ).load_state_dict(state)
    assert "other batching settings (max_duration 4.0 → 2.0)" in caplog.text


@pytest.mark.parametrize("stop", [0, 2, 5])
def test_data_resume_mid_epoch(make_corpus, stop: int) -> None:
    cfg = _cfg(make_corpus())
    tok = _tok(cfg)
    ref = build_dataloader(cfg, ["source_train"], tok, train=True, seed=7)
    ref.set_epoch(2)
    full = list(ref)
    first = build_dataloader(cfg, ["source_train"], tok, train=True, seed=7)
    first.set_epoch(2)
    it = iter(first)
    for k in range(stop):
        _same(next(it), full[k])
    state = json.loads(json.dumps(first.state_dict()))  # what a checkpoint holds
    resumed = build_dataloader(cfg, ["source_train"], tok, train=True, seed=7)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)  # the trainer sets the epoch again: the position must survive
    rest = list(resumed)
    assert len(rest) == len(full) - stop
    for a, b in zip(rest, full[stop:]):
        _same(a, b)
    resumed.set_epoch(3)
    assert len(list(resumed)) == len(resumed)


def test_data_resume_after_a_complete_epoch(make_corpus) -> None:
    cfg = _cfg(make_corpus())
    tok = _tok(cfg)
    loader = build_dataloader(cfg, ["source_train"], tok, train=True, seed=7)
    n = len(list(loader))
    again = build_dataloader(cfg, ["source_train"], tok, train=True, seed=7)
    again.load_state_dict(loader.state_dict())
    assert list(again) == []  # the epoch was finished before the checkpoint
    assert len(list(again)) == n  # a later pass over the same epoch starts afresh


def test_data_epochs_differ_and_state_checks(make_corpus) -> None:
    cfg = _cfg(make_corpus())
    loader = build_dataloader(cfg, ["source_train"], _tok(cfg), train=True, seed=0)
    e0 = [b.cut_ids for b in loader]
    loader.set_epoch(1)
    assert [b.cut_ids for b in loader] != e0
    state = loader.state_dict()
    other = build_dataloader(cfg, ["target_test"], _tok(cfg), train=True, seed=0)
    with pytest.raises(DataError, match="other data"):
        other.load_state_dict(state)


def test_data_ddp_ranks_disjoint(make_corpus) -> None:
    cfg = _cfg(make_corpus({"source_train": 40}))
    tok = _tok(cfg, ("source_train",))
    ranks = [
        build_dataloader(cfg, ["source_train"], tok, train=True, seed=3, rank=r, world_size=3)
        for r in range(3)
    ]
    ids = [[i for b in r for i in b.cut_ids] for r in ranks]
    assert len({len(r) for r in ranks}) == 1
    flat = [i for r in ids for i in r]
    assert len(flat) == len(set(flat)) == 40


@pytest.mark.slow
def test_data_workers_give_the_same_batches(make_corpus) -> None:
    cfg = _cfg(make_corpus({"source_train": 12}))
    tok = _tok(cfg, ("source_train",))
    a = list(build_dataloader(cfg, ["source_train"], tok, train=True, seed=1))
    cfg2 = replace(cfg, batching=replace(cfg.batching, num_workers=2))
    assert cfg2.batching.worker_start == "forkserver"  # the dataset travels pickled
    b = list(build_dataloader(cfg2, ["source_train"], tok, train=True, seed=1))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        _same(x, y)


def test_data_workers_settings_are_checked_and_a_stuck_worker_is_an_error(make_corpus) -> None:
    cfg = _cfg(make_corpus({"source_train": 4}))
    tok = _tok(cfg, ("source_train",))
    for key, value in (("worker_start", "threads"), ("worker_timeout_s", -1.0)):
        bad = replace(cfg, batching=replace(cfg.batching, **{key: value}))
        with pytest.raises(ConfigError, match=f"data.batching.{key}"):
            build_dataloader(bad, ["source_train"], tok, train=True)
    bad = replace(cfg, batching=replace(cfg.batching, worker_timeout_s=float("inf")))
    with pytest.raises(ConfigError, match="or 0 to wait without a limit"):
        build_dataloader(bad, ["source_train"], tok, train=True)
    # no worker can start, import and make a batch in a millisecond: the wait ends in a DataError
    hurried = replace(cfg, batching=replace(cfg.batching, num_workers=1, worker_timeout_s=1e-3))
    loader = build_dataloader(hurried, ["source_train"], tok, train=True)
    with pytest.raises(DataError, match=r"batch 0 of epoch 0: .*worker_timeout_s"):
        list(loader)
    assert loader.position == 0
    # with time to start (0: no limit), the same loader then makes the whole epoch
    loader.cfg = replace(hurried, batching=replace(hurried.batching, worker_timeout_s=0.0))
    want = build_dataloader(cfg, ["source_train"], tok, train=True)
    got = list(loader)
    assert len(got) == len(want) > 0
    for x, y in zip(got, want):
        _same(x, y)


def test_data_loader_bad_items(make_corpus, caplog) -> None:
    root = make_corpus()
    cfg = _cfg(root, augment=AugmentConfig())
    tok = _tok(cfg)
    # a character the tokenizer cannot encode, found when the loader is built
    rows = (root / "target_test.jsonl").read_text().splitlines()
    row = json.loads(rows[0])
    row["text"] = "NO ÑANDÚ"
    (root / "target_test.jsonl").write_text("\n".join([json.dumps(row), *rows[1:]]) + "\n")
    with pytest.raises(DataError, match=f"{row['id']}: .*cannot encode"):
        build_dataloader(cfg, ["target_test"], tok, train=False)
    skip = replace(cfg, skip_bad=True)
    loader = build_dataloader(skip, ["target_test"], tok, train=False)
    assert len(loader.table) == 5 and loader.report.bad[0][0] == row["id"]
    # a file that breaks after the loader was built: skipped and logged, or a DataError
    victim = loader.table.ids[0]
    (root / "audio" / f"{victim}.wav").write_bytes(b"RIFF garbage")
    with caplog.at_level(logging.WARNING):
        got = [i for b in loader for i in b.cut_ids]
    assert victim not in got and len(got) == 4
    assert any(victim in msg for _, msg in loader.report.bad) and victim in caplog.text
    strict = build_dataloader(cfg, ["source_train"], tok, train=False)
    (root / "audio" / f"{strict.table.ids[0]}.wav").write_bytes(b"")
    with pytest.raises(DataError, match=strict.table.ids[0]):
        list(strict)


def test_data_domains_mapping() -> None:
    assert domain_map({}, ["target", "noisy", "source", "clean"]) == {
        "source": 0,
        "target": 1,
        "clean": 2,
        "noisy": 3,
    }
    assert domain_map({"a": 5}, ["a"]) == {"a": 5}


def test_data_global_normalisation_and_memory_cache(make_corpus) -> None:
    cfg = _cfg(
        make_corpus(),
        augment=AugmentConfig(spec_augment=False),
        features=FeatureConfig(normalize="global", cache="memory"),
    )
    tok = _tok(cfg)
    train = build_dataloader(cfg, ["source_train"], tok, train=True)
    stats = train.feature_stats
    assert stats is not None and stats.mean.shape == (80,)
    frames = torch.cat(
        [b.features[k, : b.feature_lengths[k]] for b in train for k in range(len(b))]
    )
    torch.testing.assert_close(
        frames.double().mean(0), torch.zeros(80, dtype=torch.float64), atol=1e-3, rtol=0
    )
    torch.testing.assert_close(
        frames.double().std(0), torch.ones(80, dtype=torch.float64), atol=1e-2, rtol=0
    )
    assert len(train.maker.cache) == len(train.table)
    with pytest.raises(ConfigError, match="feature_stats"):
        build_dataloader(cfg, ["target_test"], tok, train=False)
    ev = build_dataloader(cfg, ["target_test"], tok, train=False, feature_stats=stats)
    assert all(torch.isfinite(b.features).all() for b in ev)


@pytest.mark.slow
def test_data_fsdd_loader(shared_data: Path) -> None:
    cfg = DataConfig(
        root=str(shared_data / "fsdd"),
        train=["train"],
        augment=AugmentConfig(noise_snr_db=[10.0]),
        features=FeatureConfig(sample_rate=16000),
    )
    tok = build_tokenizer(cfg, corpus_texts(cfg, ["train"]))
    loader = build_dataloader(cfg, ["test"], tok, train=False)
    assert sum(len(b) for b in loader) == 1000
    b = next(iter(loader))
    assert set(b.speakers) <= {"theo", "nicolas"} and torch.isfinite(b.features).all()
    assert np.all(b.domains.numpy() == 0)


def test_data_unlabelled_utterances_have_no_tokens(make_corpus) -> None:
    root = make_corpus({"source_train": 8, "target_unlabelled": 6})
    rows = [json.loads(x) for x in (root / "target_unlabelled.jsonl").read_text().splitlines()]
    for r in rows:
        r["labelled"] = False
        r["text"] += " Ω"  # not encodable: must not matter for unlabelled utterances
    (root / "target_unlabelled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _cfg(root)
    tok = _tok(cfg, ("source_train", "target_unlabelled"))
    assert tok.vocab_size == _tok(cfg, ("source_train",)).vocab_size  # unlabelled text unused
    loader = build_dataloader(cfg, ["source_train", "target_unlabelled"], tok, train=False)
    for b in loader:
        for k, cid in enumerate(b.cut_ids):
            assert (int(b.token_lengths[k]) == 0) == cid.startswith("target")
    plain = build_dataloader(cfg, ["source_train"], None, train=True, labels=False)
    b = next(iter(plain))
    assert b.tokens.shape == (len(b), 0) and b.texts[0]


def test_data_speaker_normalisation(make_corpus) -> None:
    """normalize=speaker: each speaker's frames have mean 0 and std 1 over that speaker (float64
    reference), in training and evaluation loaders alike; an utterance with no speaker gets the
    training set's global statistics, as does a file normalised outside a loader."""
    root = make_corpus({"source_train": 18, "target_test": 9})
    rows = [json.loads(x) for x in (root / "target_test.jsonl").read_text().splitlines()]
    rows[0]["speaker"] = ""
    (root / "target_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _cfg(
        root,
        augment=AugmentConfig(spec_augment=False),
        features=FeatureConfig(normalize="speaker"),
    )
    tok = _tok(cfg)
    train = build_dataloader(cfg, ["source_train"], tok, train=True)
    stats = train.feature_stats
    assert stats is not None and set(train.maker.speaker_stats) == {"spk0", "spk1", "spk2"}
    ev = build_dataloader(cfg, ["target_test"], tok, train=False, feature_stats=stats)
    assert ev.feature_stats is stats
    for loader in (train, ev):
        raw = {i: loader.maker.features(k, None) for k, i in enumerate(loader.table.ids)}
        spk = dict(zip(loader.table.ids, loader.table.speakers))
        got: dict[str, list[torch.Tensor]] = {}
        for b in loader:
            for k in range(len(b)):
                f = b.features[k, : b.feature_lengths[k]].double()
                got.setdefault(spk[b.cut_ids[k]], []).append(f)
                if not spk[b.cut_ids[k]]:
                    ref = (raw[b.cut_ids[k]] - stats.mean) / stats.std
                    torch.testing.assert_close(f, torch.from_numpy(ref), atol=1e-4, rtol=0)
        for s, fs in got.items():
            if not s:
                continue
            frames = torch.cat(fs)
            ref = np.concatenate([raw[i] for i in raw if spk[i] == s]).astype(np.float64)
            want = (ref - ref.mean(0)) / np.sqrt(np.maximum(ref.var(0), 1e-6))
            torch.testing.assert_close(
                frames.mean(0), torch.zeros(80, dtype=torch.float64), atol=1e-3, rtol=0
            )
            torch.testing.assert_close(
                torch.sort(frames.flatten()).values,
                torch.sort(torch.from_numpy(want).flatten()).values,
                atol=1e-3,
                rtol=0,
            )
    assert "" in got and len(got) == 4
    # waveform augmentation never reaches the statistics
    aug = AugmentConfig(speed_perturb=True, noise_snr_db=[5.0, 10.0], noise_prob=1.0)
    noisy = build_dataloader(replace(cfg, augment=aug), ["source_train"], tok, train=True)
    for s, st in train.maker.speaker_stats.items():
        np.testing.assert_array_equal(noisy.maker.speaker_stats[s].mean, st.mean)
    np.testing.assert_array_equal(noisy.feature_stats.std, stats.std)
    with pytest.raises(ConfigError, match="vtlp_alpha"):
        build_dataloader(
            replace(cfg, augment=AugmentConfig(vtlp_prob=0.5, vtlp_alpha=[])),
            ["source_train"],
            tok,
            train=True,
        )
    f = ev.maker.features(0, None)
    torch.testing.assert_close(
        torch.from_numpy(normalize_features(f, "speaker", stats)),
        torch.from_numpy(((f - stats.mean) / stats.std).astype(np.float32)),
    )
    with pytest.raises(ConfigError, match="speaker feature normalisation needs"):
        build_dataloader(cfg, ["target_test"], tok, train=False)
    with pytest.raises(ConfigError, match="expected one of"):
        build_dataloader(
            replace(cfg, features=FeatureConfig(normalize="speakers")),
            ["target_test"],
            tok,
            train=False,
        )


def test_data_loader_vtlp_is_seeded_and_training_only(make_corpus) -> None:
    root = make_corpus()
    base = AugmentConfig(spec_augment=False)
    on = replace(base, vtlp_prob=1.0, vtlp_alpha=[1.15, 1.2])
    tok = _tok(_cfg(root))

    def first(aug: AugmentConfig, train: bool = True) -> Batch:
        cfg = _cfg(root, augment=aug, features=FeatureConfig(normalize="none"))
        return next(iter(build_dataloader(cfg, ["source_train"], tok, train=train, seed=3)))

    plain, warped = first(base), first(on)
    assert plain.cut_ids == warped.cut_ids
    assert not torch.allclose(plain.features, warped.features)
    _same(warped, first(on))  # same seed, same warps
    _same(first(base, train=False), first(on, train=False))  # never at evaluation
    # a warp factor > 1 moves energy up: the mean spectral centroid rises
    bins = torch.arange(80, dtype=torch.float32)

    def centroid(b: Batch) -> float:
        e = b.features.exp() * (b.features != 0)
        return float((e * bins).sum() / e.sum())

    assert centroid(warped) > centroid(plain) + 1.0


def test_training_loaders_refuse_utterances_too_short_for_the_front_end(make_corpus) -> None:
    """Below 7 feature frames (4x) or 15 (8x), after the fastest speed factor, an utterance has no
    encoder frame and no alignment: training refuses it by name instead of skipping updates."""
    from types import SimpleNamespace

    from semiasr.models import ModelConfig
    from semiasr.tasks.common import training_data_config

    cfg = _cfg(make_corpus({"source_train": 4}))
    plain = replace(cfg, augment=AugmentConfig())

    def minimum(data: DataConfig, factor: int = 4) -> float:
        run = SimpleNamespace(model=ModelConfig(subsampling=factor), data=data)
        return training_data_config(run).min_utt_duration

    assert minimum(plain) == pytest.approx(0.086)  # 25 ms + 6 × 10 ms, plus 1 ms of slack
    assert minimum(plain, 8) == pytest.approx(0.166)
    fast = replace(plain, augment=AugmentConfig(speed_perturb=True, speed_factors=[0.9, 1.2]))
    assert minimum(fast) == pytest.approx(0.085 * 1.2 + 0.001)
    long = replace(plain, min_utt_duration=0.5)
    run = SimpleNamespace(model=ModelConfig(), data=long)
    assert training_data_config(run) is long  # already enough: untouched
    root = make_corpus({"source_train": 2})
    rows = [json.loads(x) for x in (root / "source_train.jsonl").read_text().splitlines()]
    rows[1]["duration"] = 0.06
    (root / "source_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    short = SimpleNamespace(model=ModelConfig(), data=replace(plain, root=str(root)))
    with pytest.raises(DataError, match=r"source_train_001: duration 0\.060 s is below 0\.086"):
        build_dataloader(training_data_config(short), ["source_train"], None, train=True)
