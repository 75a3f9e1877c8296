"""Log-mel features: our batched torch Fbank against kaldi-native-fbank (to 1e-4), padding
invariance, per-utterance and global mean/variance normalisation against float64 numpy."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import pytest
import torch

from semiasr.data.audio import read_audio
from semiasr.data.config import FeatureConfig
from semiasr.data.features import Fbank, GlobalStats, NativeFbank, apply_cmvn, kaldi_mel_banks


def _knf(
    x: np.ndarray, sr: int, num_bins: int = 80, shift_ms: float = 10.0, length_ms: float = 25.0
) -> np.ndarray:
    o = knf.FbankOptions()
    o.frame_opts.samp_freq = sr
    o.frame_opts.dither = 0.0
    o.frame_opts.frame_shift_ms = shift_ms
    o.frame_opts.frame_length_ms = length_ms
    o.mel_opts.num_bins = num_bins
    f = knf.OnlineFbank(o)
    f.accept_waveform(sr, x.tolist())
    f.input_finished()
    return np.stack([f.get_frame(i) for i in range(f.num_frames_ready)])


def _speechlike(n: int, seed: int) -> np.ndarray:
    """Pink-ish noise plus harmonics: no spectral bin is near zero for long."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    x = 0.05 * rng.standard_normal(n) + sum(
        0.1 / k * np.sin(2 * np.pi * 150 * k * t) for k in (1, 2, 3)
    )
    return x.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_data_torch_fbank_matches_kaldi_native_fbank(seed: int) -> None:
    x = _speechlike(16000 + 137 * seed, seed)
    ref = _knf(x, 16000)
    ours, lens = Fbank(FeatureConfig(), dtype=torch.float64)(torch.from_numpy(x).double()[None])
    assert ours.shape[1] == ref.shape[0] == int(lens[0])
    np.testing.assert_allclose(ours[0].numpy(), ref, atol=1e-4, rtol=0)


def test_data_torch_fbank_matches_knf_on_real_speech(shared_data: Path) -> None:
    row = json.loads((shared_data / "fsdd" / "manifest.jsonl").read_text().splitlines()[0])
    x = read_audio(shared_data / "fsdd" / row["audio"], target_sample_rate=16000)
    x = x + np.float32(1e-3) * np.random.default_rng(0).standard_normal(x.shape[0]).astype(
        np.float32
    )
    ref = _knf(x, 16000)
    ours, _ = Fbank(FeatureConfig(), dtype=torch.float64)(torch.from_numpy(x).double()[None])
    np.testing.assert_allclose(ours[0].numpy(), ref, atol=1e-4, rtol=0)


def test_data_native_fbank_is_knf_and_float32_torch_is_close() -> None:
    x = _speechlike(12345, 7)
    ref = _knf(x, 16000)
    np.testing.assert_array_equal(NativeFbank(FeatureConfig())(x), ref)
    cfg8k = FeatureConfig(
        sample_rate=8000, num_mel_bins=40, frame_shift_ms=12.5, frame_length_ms=20.0
    )
    copy = pickle.loads(pickle.dumps(NativeFbank(cfg8k)))  # as loader workers receive it
    np.testing.assert_array_equal(copy(x), _knf(x, 8000, num_bins=40, shift_ms=12.5, length_ms=20))
    ours32, _ = Fbank(FeatureConfig())(torch.from_numpy(x)[None])
    assert np.abs(ours32[0].numpy() - ref).mean() < 1e-4


def test_data_mel_banks_match_knf() -> None:
    o = knf.MelBanksOptions()
    o.num_bins = 80
    ref = np.asarray(knf.MelBanks(o, knf.FrameExtractionOptions(), 1.0).get_matrix())
    ours = kaldi_mel_banks(80, 512, 16000)
    assert ours.shape == (80, 257) and np.all(ours[:, -1] == 0)
    assert np.all(ours >= 0) and np.all(ours <= 1) and np.all(ours.sum(1) > 0)
    np.testing.assert_allclose(ours[:, : ref.shape[1]], ref, atol=3e-5)  # knf computes in float32


def test_data_fbank_batch_equals_one_by_one() -> None:
    fb = Fbank(FeatureConfig(), dtype=torch.float64)
    xs = [torch.from_numpy(_speechlike(n, n)).double() for n in (4000, 9000, 16000)]
    pad = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
    feats, lens = fb(pad, torch.tensor([x.shape[0] for x in xs]))
    for b, x in enumerate(xs):
        one, n = fb(x[None])
        assert int(lens[b]) == int(n[0]) == 1 + (x.shape[0] - 400) // 160
        torch.testing.assert_close(feats[b, : lens[b]], one[0], atol=1e-9, rtol=0)
        assert torch.all(feats[b, lens[b] :] == 0)
    assert fb(torch.zeros(1, 100))[0].shape == (1, 0, 80)


def test_data_cmvn_per_utterance_and_global() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 50, 4, generator=gen, dtype=torch.float64) * 3 + 5
    lens = torch.tensor([50, 20, 7])
    y = apply_cmvn(x, lens)
    for b, n in enumerate(lens.tolist()):
        ref = x[b, :n].numpy()
        ref = (ref - ref.mean(0)) / np.sqrt(ref.var(0) + 1e-5)
        np.testing.assert_allclose(y[b, :n].numpy(), ref, atol=1e-10)
        assert torch.all(y[b, n:] == 0)
    acc = GlobalStats.accumulator(4)
    acc.update(x, lens)
    stats = GlobalStats.from_dict(json.loads(json.dumps(acc.finalize().to_dict())))
    frames = np.concatenate([x[b, :n].numpy() for b, n in enumerate(lens.tolist())])
    np.testing.assert_allclose(stats.mean, frames.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, frames.std(0), rtol=1e-10)
    assert stats.count == 77
    z = apply_cmvn(x, lens, stats)
    np.testing.assert_allclose(
        z[0, :5].numpy(), (x[0, :5].numpy() - frames.mean(0)) / frames.std(0)
    )
