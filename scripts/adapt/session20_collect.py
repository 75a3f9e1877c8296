"""Collect session 20's screen (runs/screen20-VARIANT-seedS, from session20_screen.sh and the
front-end diagnostic) into one JSON: per variant and seed the target dev / target test / source test
WERs, the trained share of the encoder and the step time; per variant the means over its seeds
(and over seeds 0-2, the screen's, where a variant has more).
Usage: python scripts/adapt/session20_collect.py [OUT.json]"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def seed_summary(row: dict) -> dict:
    """One run's row of benchmarks/adaptation.py, rounded for the session JSONs: its WERs, the
    trained share of the encoder and the step time."""
    return {
        "target_dev_wer": round(row["target_dev_wer"], 2),
        "target_test_wer": round(row["target_test_wer"], 2),
        "source_test_wer": round(row["source_test_wer"], 2),
        "trainable_encoder_pct": round(row["trainable_encoder_pct"], 2),
        "step_ms": round(1000 * row["step_s"], 1),
    }


def collect() -> dict:
    variants: dict[str, dict] = {}
    for path in sorted(ROOT.glob("runs/screen20-*-seed*/adaptation.json")):
        m = re.fullmatch(r"screen20-(.+)-seed(\d+)", path.parent.name)
        row = json.loads(path.read_text())["rows"][-1]
        v = variants.setdefault(m.group(1), {"label": row["label"], "overrides": row["overrides"],
                                             "lr": row["lr"], "seeds": {}})  # fmt: skip
        v["seeds"][int(m.group(2))] = seed_summary(row)
    for v in variants.values():
        seeds = sorted(v["seeds"])
        v["seeds"] = {s: v["seeds"][s] for s in seeds}
        for key in ("target_dev_wer", "target_test_wer", "source_test_wer"):
            v[f"mean_{key}"] = round(statistics.mean(v["seeds"][s][key] for s in seeds), 2)
            if len(seeds) > 3 and {0, 1, 2} <= set(seeds):  # the screen's rule read seeds 0-2
                v[f"mean_seeds012_{key}"] = round(
                    statistics.mean(v["seeds"][s][key] for s in (0, 1, 2)), 2
                )
    return variants


if __name__ == "__main__":
    out = collect()
    text = json.dumps(out, indent=1)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text + "\n")
    for name, v in out.items():
        devs = " / ".join(f"{s['target_dev_wer']:.2f}" for s in v["seeds"].values())
        print(f"{name:12s} dev {devs} -> {v['mean_target_dev_wer']:.2f}")
