"""Collect session 21's runs into one JSON: the multi-condition base (its report's WERs), every
adaptation run of session21_mct.sh (runs/s21-BASE-METHOD-LR-seedS) with per method and rate the
means over seeds and, at five seeds, the gap to full fine-tuning's five-seed mean; the paired timer
calls (speed_check.sh folders); the pre-registration text; the per-condition breakdown, if made.
Usage: python scripts/adapt/session21_collect.py OUT.json PREREG.md CONDITIONS.json SPEED_DIR ..."""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "adapt"))
from ci95 import mean_ci95  # noqa: E402
from session20_collect import seed_summary  # noqa: E402

METHODS = "full|row|conv15|conv|blocks|frontend|rowfe|block0|block3"
"""session 21's methods of session21_mct.sh (session 22 added conv123: scripts/adapt/session22_collect.py)"""


def runs(methods: str = METHODS, prefix: str = "s21") -> dict[str, dict]:
    """The runs runs/PREFIX-BASE-METHOD-LR-seedS of session21_mct.sh, keyed BASE:METHOD@LR."""
    rows: dict[str, dict] = {}
    for path in sorted(ROOT.glob(f"runs/{prefix}-*-seed*/adaptation.json")):
        m = re.fullmatch(rf"{prefix}-(.+)-({methods})-([0-9.]+)-seed(\d+)", path.parent.name)
        if m is None:
            continue
        row = json.loads(path.read_text())["rows"][-1]
        key = f"{m.group(1)}:{m.group(2)}@{m.group(3)}"
        r = rows.setdefault(key, {"base": f"runs/{m.group(1)}", "label": row["label"],
                                  "overrides": row["overrides"], "lr": row["lr"], "seeds": {}})  # fmt: skip
        r.setdefault("_raw", {})[int(m.group(4))] = row  # means from the unrounded WERs
        r["seeds"][int(m.group(4))] = seed_summary(row)
    for r in rows.values():
        r["seeds"] = dict(sorted(r["seeds"].items()))
        for k in ("target_dev_wer", "target_test_wer", "source_test_wer"):
            r[f"mean_{k}"] = round(statistics.mean(x[k] for x in r["_raw"].values()), 3)
    for r in rows.values():
        del r["_raw"]
    full = rows.get("mct21:full@0.003")
    if full and len(full["seeds"]) == 5:
        for r in rows.values():
            if len(r["seeds"]) == 5 and r is not full:
                ratio = r["mean_target_test_wer"] / full["mean_target_test_wer"]
                r["behind_full_pct"] = round(100 * (ratio - 1), 2)
    return rows


def speed(folder: Path) -> dict:
    calls = [json.loads(p.read_text()) for p in sorted(folder.glob("call-*.json"))]
    by_mean = [1 / c["b_over_a_mean"] for c in calls]
    by_median = [1 / c["b_over_a"] for c in calls]
    return {
        "folder": str(folder.relative_to(ROOT)) if folder.is_absolute() else str(folder),
        "b": calls[0]["b"],
        "by_mean_steps": [round(x, 3) for x in by_mean],
        "by_mean_steps_summary": mean_ci95(by_mean),
        "by_medians": [round(x, 3) for x in by_median],
        "by_medians_summary": mean_ci95(by_median),
    }


if __name__ == "__main__":
    out, prereg, conditions, *speeds = sys.argv[1:]
    report = (ROOT / "runs/mct21/report.md").read_text()
    cond = Path(conditions)
    doc = {
        "session": 21,
        "date": "2026-11-28",
        "machine": "2-core CPU, 2 threads, fp32",
        "base": {
            "run": "runs/mct21",
            "command": report.split("Made by `")[1].split("`")[0],
            "report_table": [
                ln
                for ln in report.splitlines()
                if ln.startswith("| source model") or ln.startswith("| adapted")
            ],
        },
        "adaptation_command": "scripts/adapt/session21_mct.sh 'METHOD:LR ...' 'SEEDS' runs/mct21",
        "notes": [
            "conv seed 0 ran before amendment 1 as a direct benchmarks/adaptation.py call with the"
            " script's settings and the row label 'conv' (seeds 1-4: the script, 'conv SiLU row')",
        ],
        "runs": runs(),
        "speed_checks": [speed(Path(s)) for s in speeds],
        "conditions": json.loads(cond.read_text()) if cond.is_file() else None,
        "preregistration": Path(prereg).read_text(),
    }
    Path(out).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    for key, r in doc["runs"].items():
        print(key, len(r["seeds"]), r["mean_target_dev_wer"], r["mean_target_test_wer"],
              r.get("behind_full_pct"))  # fmt: skip
