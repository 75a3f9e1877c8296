"""Collect session 22's measurements into one JSON: the convolution row in blocks 1-3 (conv123, the
pre-registered amendment 4: runs/s21-mct21-conv123-0.006-seedS of session21_mct.sh) beside the rows
it is judged against (full fine-tuning and the full-depth convolution row, session 21's runs) and
those two again on session 22's code (runs/s22-mct21-METHOD-LR-seedS, the pre-registration's
addendum); the
paired timer calls (speed_check.sh folders); the fused joiner loss before and after this session's
kernels (benchmarks/joiner_loss.py JSON files named old-N.json / new-N.json, see ``JOINER``); the
pre-registration text; the exploratory telephone screen (seed 0: conv48fe and conv2pos of
session21_mct.sh under PREFIX=s22, and the target-dev breakdown by condition of
session21_conditions.py --split target_dev).
Usage: python scripts/adapt/session22_collect.py OUT.json PREREG.md JOINER_DIR SCREEN.json SPEED_DIR ..."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "adapt"))
from session21_collect import runs, speed  # noqa: E402

JOINER = (
    "old: commit 987d909 (session 21) in a worktree, new: this session's code; each "
    "`python benchmarks/joiner_loss.py --run runs/mct21 --split target_train --threads 2 "
    "--batches 8 --repeats 5`, alternated old/new three times on one quiet machine"
)


def joiner(folder: Path) -> dict:
    out: dict = {"command": JOINER}
    for version in ("old", "new"):
        files = sorted(folder.glob(f"{version}-*.json"))
        rows = [
            {r["method"]: r for r in json.loads(p.read_text())["rows"]} for p in files
        ]  # the same run's materialised-logits time: what the machine's speed was then
        ms = [round(r["blocked, CPU pass"]["ms"], 2) for r in rows]
        out[version] = {
            "cpu_pass_ms_per_batch": ms,
            "median": statistics.median(ms),
            "logits_ms_per_batch": [round(r["logits"]["ms"], 2) for r in rows],
            "cpu_pass_speedup_vs_logits": [
                round(r["blocked, CPU pass"]["vs_logits"], 3) for r in rows
            ],
        }
    out["old_over_new_median"] = round(out["old"]["median"] / out["new"]["median"], 3)
    return out


if __name__ == "__main__":
    out, prereg, joiner_dir, screen, *speeds = sys.argv[1:]
    every = runs("full|conv123|conv")
    keep = ("mct21:full@0.003", "mct21:conv@0.006", "mct21:conv123@0.006")
    again = runs("full|conv", prefix="s22")  # the replication on session 22's code
    full22 = again["mct21:full@0.003"]["mean_target_test_wer"]
    for r in (again["mct21:conv@0.006"], every["mct21:conv123@0.006"]):
        r["behind_session22_full_pct"] = round(100 * (r["mean_target_test_wer"] / full22 - 1), 2)
    doc = {
        "session": 22,
        "date": "2026-11-28",
        "machine": "2-core CPU, 2 threads, fp32",
        "base": "runs/mct21 (session 21's multi-condition base)",
        "adaptation_command": "scripts/adapt/session21_mct.sh 'conv123:0.006' '0 1 2 3 4'",
        "runs": {k: every[k] for k in keep if k in every},
        "replication_session22_code": again,
        "speed_checks": [speed(Path(s)) for s in speeds],
        "joiner_loss": joiner(Path(joiner_dir)),
        "exploratory_telephone_screen": {
            "note": "seed 0, exploratory (not a test): does more adapter capacity after the front "
            "end (conv48fe) or after each block's convolution module (conv2pos) learn the "
            "telephone channel? target_dev WER by condition, beside full fine-tuning and the "
            "convolution row (seed 0, session 22's code)",
            "runs": runs("conv48fe|conv2pos", prefix="s22"),
            "target_dev_by_condition": {
                k.split("/")[1]: v for k, v in json.loads(Path(screen).read_text()).items()
            },
        },
        "preregistration": Path(prereg).read_text(),
    }
    Path(out).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    for key, r in (*doc["runs"].items(), *again.items()):
        print(key, len(r["seeds"]), r["mean_target_test_wer"], r.get("behind_full_pct"),
              r.get("behind_session22_full_pct"))  # fmt: skip
    for s in doc["speed_checks"]:
        print(s["folder"], s["b"], s["by_mean_steps_summary"])
    print(doc["joiner_loss"]["old"]["median"], doc["joiner_loss"]["new"]["median"])
