"""benchmarks/fsdd_self_training.py's mixing ratio: the pseudo-labelled manifest written N times
over, with ids the loader accepts as distinct utterances of the same audio."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from semiasr.data.manifest import load_split

BENCH = Path(__file__).parents[3] / "benchmarks" / "fsdd_self_training.py"


def _bench():
    spec = importlib.util.spec_from_file_location("fsdd_self_training_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_repeat_manifest_writes_each_row_n_times_with_distinct_ids(tmp_path: Path) -> None:
    rows = []
    for i, text in enumerate(["ONE", "TWO"]):
        sf.write(tmp_path / f"u{i}.wav", np.zeros(800, dtype=np.float32), 8000)
        rows.append(
            {"id": f"u{i}", "audio": f"u{i}.wav", "text": text, "speaker": "s", "duration": 0.1}
        )
        rows[-1]["sample_rate"] = 8000
    path = tmp_path / "pseudo.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = _bench()
    assert bench.repeat_manifest(path, 1) == path
    out = bench.repeat_manifest(path, 3)
    assert out.name == "pseudo.x3.jsonl"
    cuts = list(load_split("unused", str(out)))
    assert len(cuts) == 6 and len({c.id for c in cuts}) == 6
    assert sorted(c.supervisions[0].text for c in cuts) == ["ONE"] * 3 + ["TWO"] * 3
    assert {c.recording.sources[0].source for c in cuts} == {
        str((tmp_path / f"u{i}.wav").resolve()) for i in range(2)
    }
