"""Session 17: what the second model on a batch gains in the paired timer, crossed on every batch.

Full fine-tuning and the SiLU row (r = 64, norms + depthwise kernels of blocks 1-3) as
``benchmarks/adapter_step_ab.py`` builds them; on each of 46 ``target_train`` batches, six
conditions in a rotating order, each a pair of steps of which the second is timed:

    a  row after row, new shape          d  full after full, new shape
    b  row after full, the same shape    e  full after row, the same shape
    c  row after full, another shape     f  full after row, another shape

"Another shape" is the batch cropped by a different multiple of 4 feature frames (each crop one
encoder frame shorter), so every condition runs on every batch and none is compared on another
half of the batches. Run from the repository root: ``.venv/bin/python
scripts/adapt/session17_crossed.py`` (about 2 minutes on the 2-core machine, alone on it).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from adapter_step_ab import Setup, overrides_of
from semiasr.data.loader import build_dataloader
from semiasr.tasks.common import training_data_config
from semiasr.train.runtime import flush_denormal

KEYS = [
    "a: row after row, new shape",
    "b: row after full, same shape",
    "c: row after full, other shape",
    "d: full after full, new shape",
    "e: full after row, same shape",
    "f: full after row, other shape",
]


def crop(batch, frames: int):
    t = batch.features.shape[1] - frames
    return dataclasses.replace(
        batch,
        features=batch.features[:, :t].contiguous(),
        feature_lengths=batch.feature_lengths.clamp(max=t),
    )


def main() -> None:
    torch.set_num_threads(2)
    run = Path("runs/demo13")
    also = ["encoder.layers.[123].**.*norm*", "encoder.layers.[123].**.depthwise"]
    shared = ["train.precision=fp32", f"adapt.also_train={json.dumps(also)}"]
    full = Setup(run, "averaged", *overrides_of(["full"], shared))
    row = Setup(
        run, "averaged", *overrides_of(["adapters", "bottleneck=64", "adapter_act=silu"], shared)
    )
    loader = build_dataloader(
        training_data_config(full.cfg), ["target_train"], full.tokenizer, train=True, seed=0,
        feature_stats=full.stats,
    )  # fmt: skip
    batches = [b for _, b in zip(range(50), loader)]
    res: dict[str, list[float]] = {k: [] for k in KEYS}
    first_of = {0: row, 1: full, 2: full, 3: full, 4: row, 5: row}
    with flush_denormal():
        for b in batches[:4]:  # warm-up
            full.step(b)
            row.step(b)
        for i in range(4, len(batches)):
            crops = iter(range(0, 48, 4))
            for c in [(i + j) % 6 for j in range(6)]:
                k1 = next(crops)
                k2 = next(crops) if c in (0, 2, 3, 5) else k1
                first_of[c].step(crop(batches[i], k1))
                timed = row if c < 3 else full
                res[KEYS[c]].append(timed.step(crop(batches[i], k2)))
    out = {k: {"median_ms": statistics.median(v) * 1e3, "mean_ms": statistics.mean(v) * 1e3,
               "n": len(v)} for k, v in res.items()}  # fmt: skip
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
