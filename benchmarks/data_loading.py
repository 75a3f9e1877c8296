"""Data loading speed: audio seconds loaded per wall-clock second ("× real time"), features computed
on the fly with augmentation, semiasr's loader against Lhotse's own pipeline on the same utterances.

    .venv/bin/python benchmarks/data_loading.py                  # FSDD if ../shared/data is there
    .venv/bin/python benchmarks/data_loading.py --generated      # synthetic tones in a temp folder
    .venv/bin/python benchmarks/data_loading.py --mode light --limit 400 --json out.json

Two settings, each run by both pipelines when possible:

- ``light``: audio read at its own rate (8 kHz for FSDD), 80-d Kaldi log-mel, SpecAugment.
- ``full``: resampled to 16 kHz, speed perturbation (0.9/1.0/1.1), additive noise (5–20 dB SNR, p =
  0.5), simulated reverberation (p = 0.3), 80-d log-mel, SpecAugment. Lhotse's resampling, speed and
  reverberation need scipy (or torchaudio); without it the peer skips this setting.

Length-bucketed batches of at most 30 s. Peer: Lhotse's DynamicBucketingSampler +
K2SpeechRecognitionDataset with OnTheFlyFeatures(Fbank), PerturbSpeed, CutMix,
ReverbWithImpulseResponse and SpecAugment. Runs alternate (ours, peer, ours, peer, ...) so that load
on a shared machine hits both; the summary gives medians and the median ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from semiasr.data.config import AugmentConfig, BatchingConfig, DataConfig  # noqa: E402
from semiasr.data.loader import build_dataloader, corpus_texts  # noqa: E402
from semiasr.data.manifest import write_jsonl  # noqa: E402
from semiasr.data.tokenizer import build_tokenizer  # noqa: E402


def shared_data() -> Path:
    return Path(os.environ.get("SEMIASR_SHARED_DATA", REPO.parent / "shared" / "data"))


def generated_corpus(folder: Path, n: int) -> Path:
    """``n`` 0.3–1.5 s, 8 kHz noisy tones with digit-word transcripts, as <folder>/train.jsonl."""
    rng = np.random.default_rng(0)
    (folder / "audio").mkdir(parents=True)
    rows = []
    for i in range(n):
        dur = rng.uniform(0.3, 1.5)
        t = np.arange(int(dur * 8000)) / 8000
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 1000) * t) + 0.02 * rng.standard_normal(
            t.size
        )
        sf.write(folder / "audio" / f"u{i}.wav", x.astype(np.float32), 8000)
        rows.append(
            {
                "id": f"u{i}",
                "audio": f"audio/u{i}.wav",
                "text": "ONE TWO",
                "speaker": "s",
                "duration": t.size / 8000,
                "sample_rate": 8000,
                "suggested_split": "train",
            }
        )
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def subset(root: Path, limit: int, work: Path) -> Path:
    """About ``limit`` training utterances of ``root``, spread over speakers, as a corpus folder."""
    from semiasr.data.manifest import load_manifest

    cuts = load_manifest(root, "train")
    step = max(1, len(cuts) // limit)
    picked = [c for i, c in enumerate(cuts) if i % step == 0][:limit]
    for c in picked:
        c.custom["suggested_split"] = "train"
    (work / "sub").mkdir()
    write_jsonl(picked, work / "sub" / "manifest.jsonl")
    return work / "sub"


def noise_file(work: Path) -> Path:
    (work / "noise").mkdir()
    p = work / "noise" / "noise.wav"
    sf.write(
        p, (0.1 * np.random.default_rng(1).standard_normal(16000 * 20)).astype(np.float32), 16000
    )
    return p


def run_ours(cfg: DataConfig, tok, seed: int, epoch: int) -> tuple[float, float, int]:
    loader = build_dataloader(cfg, ["train"], tok, train=True, seed=seed)
    loader.set_epoch(epoch)
    audio = float(loader.table.durations.sum())
    t = time.perf_counter()
    n = sum(1 for _ in loader)
    return audio, time.perf_counter() - t, n


def peer_can_run(mode: str) -> bool:
    if mode == "light":
        return True
    try:
        import scipy  # noqa: F401  (Lhotse resamples, speeds up and reverberates with it)
    except ImportError:
        return False
    return True


def run_lhotse(
    root: Path, mode: str, noise: Path, seed: int, epoch: int
) -> tuple[float, float, int]:
    from lhotse import CutSet, Fbank, FbankConfig, Recording
    from lhotse.dataset import (
        CutMix,
        DynamicBucketingSampler,
        K2SpeechRecognitionDataset,
        OnTheFlyFeatures,
        PerturbSpeed,
        ReverbWithImpulseResponse,
        SpecAugment,
    )

    from semiasr.data.manifest import load_manifest

    cuts = CutSet.from_cuts(load_manifest(root, "train"))
    rate = cuts[0].sampling_rate
    transforms = []
    if mode == "full":
        rate = 16000
        cuts = cuts.resample(rate)
        noise_cuts = CutSet.from_cuts([Recording.from_file(noise).to_cut()])
        transforms = [
            PerturbSpeed(factors=[0.9, 1.1], p=2 / 3),
            CutMix(noise_cuts, snr=(5, 20), p=0.5, seed=seed),
            ReverbWithImpulseResponse(p=0.3),
        ]
    audio = float(sum(c.duration for c in cuts))
    ds = K2SpeechRecognitionDataset(
        cut_transforms=transforms,
        input_strategy=OnTheFlyFeatures(Fbank(FbankConfig(num_mel_bins=80, sampling_rate=rate))),
        input_transforms=[SpecAugment(time_warp_factor=0, frames_mask_size=27)],
    )
    sampler = DynamicBucketingSampler(
        cuts, max_duration=30.0, shuffle=True, num_buckets=10, seed=seed
    )
    sampler.set_epoch(epoch)
    t = time.perf_counter()
    n = 0
    for batch_cuts in sampler:
        ds[batch_cuts]
        n += 1
    return audio, time.perf_counter() - t, n


def config(root: Path, mode: str, noise: Path, rate: int) -> DataConfig:
    aug = AugmentConfig()
    cfg = DataConfig(
        root=str(root),
        train=["train"],
        augment=aug,
        batching=BatchingConfig(max_duration=30.0, num_buckets=10),
    )
    cfg.features.sample_rate = rate
    if mode == "full":
        cfg.features.sample_rate = 16000
        aug.speed_perturb, aug.speed_factors = True, [0.9, 1.0, 1.1]
        aug.noise_snr_db, aug.noise_prob, aug.reverb_prob = [5.0, 20.0], 0.5, 0.3
        aug.noise_dir = str(noise.parent)  # the same noise the peer mixes in
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generated", action="store_true", help="use generated audio, not FSDD")
    ap.add_argument("--limit", type=int, default=600, help="utterances per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mode", choices=["full", "light", "both"], default="both")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=0, help="semiasr loader worker processes")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fsdd = shared_data() / "fsdd"
        use_fsdd = not args.generated and (fsdd / "manifest.jsonl").is_file()
        source = fsdd if use_fsdd else generated_corpus(work / "gen", args.limit)
        root = subset(source, args.limit, work)
        noise = noise_file(work)
        summary: dict = {
            "corpus": "fsdd" if use_fsdd else "generated",
            "threads": args.threads,
            "workers": args.workers,
            "utterances": args.limit,
            "modes": {},
        }
        modes = ["light", "full"] if args.mode == "both" else [args.mode]
        for mode in modes:
            summary["modes"][mode] = bench_mode(root, mode, noise, args)
            m = summary["modes"][mode]
            peer = (
                f"; lhotse {m['lhotse_x_rt']:.1f}x; semiasr/lhotse {m['ratio']:.2f}"
                if m["lhotse_x_rt"]
                else "; lhotse skipped (" + m["peer_note"] + ")"
            )
            print(
                f"== {summary['corpus']}, {mode}, {args.threads} threads: semiasr "
                f"{m['semiasr_x_rt']:.1f}x real time{peer}\n",
                flush=True,
            )
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))


def bench_mode(root: Path, mode: str, noise: Path, args: argparse.Namespace) -> dict:
    from semiasr.data.manifest import load_manifest

    rate = load_manifest(root, "train")[0].recording.sampling_rate
    cfg = config(root, mode, noise, rate)
    cfg.batching.num_workers = args.workers
    tok = build_tokenizer(cfg, corpus_texts(cfg, ["train"]))
    with_peer = not args.no_peer and peer_can_run(mode)
    rows = []
    for r in range(args.rounds):
        runs = [("semiasr", lambda r=r: run_ours(cfg, tok, seed=0, epoch=r))]
        if with_peer:
            runs.append(("lhotse", lambda r=r: run_lhotse(root, mode, noise, seed=0, epoch=r)))
        for name, fn in runs:
            a, s, n = fn()
            rows.append({"round": r, "impl": name, "audio_s": a, "wall_s": s, "batches": n})
            print(
                f"{mode:5s} round {r} {name:8s} {a:8.1f} s audio in {s:6.2f} s: "
                f"{a / s:7.1f}x real time ({n} batches)",
                flush=True,
            )
    ours = [x["audio_s"] / x["wall_s"] for x in rows if x["impl"] == "semiasr"]
    peer = [x["audio_s"] / x["wall_s"] for x in rows if x["impl"] == "lhotse"]
    return {
        "semiasr_x_rt": statistics.median(ours),
        "lhotse_x_rt": statistics.median(peer) if peer else None,
        "ratio": statistics.median([o / p for o, p in zip(ours, peer)]) if peer else None,
        "peer_note": "" if with_peer else "no scipy for Lhotse's resampling/speed/reverb",
        "rows": rows,
    }


if __name__ == "__main__":
    main()
