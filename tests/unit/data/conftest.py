"""Fixtures for the data tests: the shared corpora (skipped when absent), tiny generated ones."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def shared_data_dir() -> Path:
    env = os.environ.get("SEMIASR_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    d = shared_data_dir()
    if not (d / "fsdd" / "manifest.jsonl").is_file():
        pytest.skip(f"shared corpora not found at {d} (set SEMIASR_SHARED_DATA)")
    return d


def tone(
    seconds: float, sr: int, freq: float = 440.0, amp: float = 0.3, seed: int = 0
) -> np.ndarray:
    """A sine with a little noise, float32 (N,)."""
    t = np.arange(int(seconds * sr)) / sr
    rng = np.random.default_rng(seed)
    x = amp * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.shape[0])
    return x.astype(np.float32)


WORDS = ["YES", "NO", "ONE", "TWO", "THREE", "FOUR", "FIVE"]


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[..., Path]:
    """A synthetic-layout corpus: <root>/<split>.jsonl with tiny wavs, domains source/target."""

    def make(splits: dict[str, int] | None = None, sr: int = 16000, seed: int = 0) -> Path:
        root = tmp_path / "corpus"
        (root / "audio").mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for split, n in (splits or {"source_train": 24, "target_test": 6}).items():
            rows = []
            for i in range(n):
                uid = f"{split}_{i:03d}"
                dur = float(rng.uniform(0.3, 1.5))
                x = tone(dur, sr, freq=float(rng.uniform(200, 900)), seed=i)
                sf.write(root / "audio" / f"{uid}.wav", x, sr)
                words = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
                rows.append(
                    {
                        "id": uid,
                        "audio": f"audio/{uid}.wav",
                        "text": words,
                        "speaker": f"spk{i % 3}",
                        "duration": round(x.shape[0] / sr, 4),
                        "sample_rate": sr,
                        "domain": split.split("_")[0],
                        "condition": "clean",
                        "voice": "en-us",
                    }
                )
            (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return root

    return make
