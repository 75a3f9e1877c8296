"""Collect session 23's measurements into one JSON: the pre-registered test of the convolution row
against full fine-tuning on the code with the fused loss's sparse backward (five seeds each,
runs/s23-mct21-METHOD-LR-seedS of session21_mct.sh under PREFIX=s23; two nine-call speed checks of
speed_check.sh, and the exploratory check before them); the joiner + loss benchmark
(benchmarks/joiner_loss.py JSON: the CPU pass over every cell against the sparse backward); the
adaptation table from the demo's source model (benchmarks/adaptation.py's adaptation.json, made by
session23_table.sh); the attribution calls of session23_attribution.sh (the loss's backward over
every cell against the threshold, alternated); the pre-registration text.
Usage: python scripts/adapt/session23_collect.py OUT.json PREREG.md JOINER.json[,JOINER.json] TABLE_DIR
           ATTRIBUTION_DIR EXPLORATORY_SPEED_DIR SPEED_DIR SPEED_DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "adapt"))
from ci95 import mean_ci95  # noqa: E402
from session21_collect import runs, speed  # noqa: E402

FULL_SESSION21 = 31.968  # the comparator of sessions 21-22 (five seeds, session 21's code)


def joiner(path: Path) -> dict:
    doc = json.loads(path.read_text())
    rows = {r["method"]: r for r in doc["rows"]}
    every, sparse = rows["blocked, CPU pass, every cell"], rows["blocked, CPU pass"]
    return {
        "file": path.name,
        "command": "python benchmarks/joiner_loss.py --run runs/mct21 --split target_train "
        f"--threads {doc['threads']} --batches {len(doc['shapes_B_T_U1'])} "
        f"--repeats {doc['repeats']}",
        "source": doc["source"],
        "ms_per_batch": {m: round(r["ms"], 2) for m, r in rows.items()},
        "every_cell_over_sparse": round(every["ms"] / sparse["ms"], 3),
        "cpu_pass_backward_cells": doc.get("cpu_pass_backward_cells"),
    }


def speed_with_steps(folder: Path) -> dict:
    """speed() and each call's mean step times (ms): what the machine's speed was then."""
    calls = [json.loads(p.read_text()) for p in sorted(folder.glob("call-*.json"))]
    return {
        **speed(folder),
        "full_mean_step_ms": [round(1000 * c["a_mean_s"], 1) for c in calls],
        "row_mean_step_ms": [round(1000 * c["b_mean_s"], 1) for c in calls],
    }


def attribution(folder: Path) -> dict:
    out: dict = {
        "command": "scripts/adapt/session23_attribution.sh 4",
        "note": "descriptive: pairs of paired timer calls, one with the loss's backward over "
        "every lattice cell (--loss-every-cell, the code before session 23) and one with the "
        "threshold, alternating which goes first",
    }
    for kind in ("every", "sparse"):
        calls = [json.loads(p.read_text()) for p in sorted(folder.glob(f"{kind}-*.json"))]
        if any(c.get("loss_every_cell") != (kind == "every") for c in calls):
            raise SystemExit(f"{folder}: a {kind}-*.json call ran with the other loss setting")
        ratios = [1 / c["b_over_a_mean"] for c in calls]
        out[kind] = {
            "by_mean_steps": [round(x, 3) for x in ratios],
            "summary": mean_ci95(ratios),
            "full_mean_step_ms": [round(1000 * c["a_mean_s"], 1) for c in calls],
            "row_mean_step_ms": [round(1000 * c["b_mean_s"], 1) for c in calls],
        }
    return out


def table(folder: Path) -> dict:
    doc = json.loads((folder / "adaptation.json").read_text())
    keep = ("method", "label", "lr", "sched", "trainable", "trainable_encoder_pct",
            "activation_MiB", "step_s", "speedup", "target_dev_wer", "target_test_wer",
            "source_test_wer", "paired_speedup", "paired_speedup_runs")  # fmt: skip
    return {
        "folder": str(folder),
        "rows": [{k: r[k] for k in keep if k in r} for r in doc["rows"]],
    }


if __name__ == "__main__":
    out, prereg, joiner_jsons, table_dir, attribution_dir, exploratory, *checks = sys.argv[1:]
    rows = runs("full|conv", prefix="s23")
    conv = rows["mct21:conv@0.006"]
    conv["behind_session21_full_pct"] = round(
        100 * (conv["mean_target_test_wer"] / FULL_SESSION21 - 1), 2
    )
    decisive = [speed_with_steps(Path(s)) for s in checks]
    quality = conv.get("behind_full_pct") is not None and conv["behind_full_pct"] <= 10.0
    fast = len(decisive) == 2 and all(
        s["by_mean_steps_summary"]["ci95"][0] >= 1.5 for s in decisive
    )
    doc = {
        "session": 23,
        "date": "2026-11-28",
        "machine": "2-core CPU, 2 threads, fp32",
        "base": "runs/mct21 (the demo's recipe since this session: `semiasr demo` with its "
        "multi-condition augmentation, made at commit fa1ad51)",
        "code": "commit b542e5a (the fused loss's sparse backward)",
        "adaptation_command": "PREFIX=s23 scripts/adapt/session21_mct.sh "
        "'full:0.003 conv:0.006' '0 1 2 3 4'",
        "runs": rows,
        "speed_command": "B_EXTRA='adapter_conv_kernel=31' SET_EXTRA='data.augment.noise_snr_db=[] "
        "data.augment.reverb_prob=0 data.augment.telephone_prob=0' "
        "scripts/adapt/speed_check.sh 9 runs/mct21",
        "speed_check_exploratory": speed_with_steps(Path(exploratory)),
        "speed_checks": decisive,
        "verdict": {
            "quality_half": quality,
            "speed_half": fast,
            "rule": "quality: the row's mean target test WER <= 1.10 x full fine-tuning's on the "
            "same code; speed: the lower end of the 95% interval of the ratio of mean steps "
            ">= 1.5 in both checks",
        },
        "attribution": attribution(Path(attribution_dir)),
        "joiner_loss": [joiner(Path(j)) for j in joiner_jsons.split(",")],
        "table": table(Path(table_dir))
        if (Path(table_dir) / "adaptation.json").is_file()
        else None,
        "preregistration": Path(prereg).read_text(),
    }
    Path(out).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    for key, r in rows.items():
        print(key, len(r["seeds"]), r["mean_target_test_wer"], r.get("behind_full_pct"),
              r.get("behind_session21_full_pct"))  # fmt: skip
    for s in (doc["speed_check_exploratory"], *decisive):
        print(s["folder"], s["by_mean_steps_summary"])
    print(doc["verdict"])
    for kind in ("every", "sparse"):
        print(kind, doc["attribution"][kind]["by_mean_steps"], doc["attribution"][kind]["summary"])
