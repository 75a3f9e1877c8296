"""Target test WER of adapted runs broken down by the corpus's acoustic condition (clean, noisy,
reverb, telephone) and text generator (command, digits, address), greedy, from each run's last
checkpoint: where one method's errors lie against another's. Usage:
    python scripts/adapt/session21_conditions.py [--split target_dev] OUT.json RUN_DIR ...
RUN_DIR: an adaptation run (runs/s21-mct21-row-0.006-seed0/mct21-SiLU-row-lr0.006-cosine);
--split: another split of the corpus (session 22's exploratory screen read target_dev)."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from semiasr.eval.wer import error_counts
from semiasr.tasks.evaluate import decode_split, load_trained


def breakdown(run: str, split: str = "target_test") -> dict[str, dict[str, float]]:
    decoder = load_trained(run, "last")
    manifest = Path(decoder.cfg.data.root) / f"{split}.jsonl"  # the corpus the run names
    groups = {}
    for line in manifest.read_text().splitlines():
        r = json.loads(line)
        groups[r["id"]] = (f"condition:{r['condition']}", f"generator:{r['generator']}")
    utts, _ = decode_split(decoder, split)
    agg: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for u in utts:
        c = error_counts(u.ref, u.hyp)
        for key in (*groups[u.id], "all"):
            agg[key][0] += c.errors
            agg[key][1] += c.ref_len
    return {k: {"wer": round(100 * e / n, 2), "words": n} for k, (e, n) in sorted(agg.items())}


if __name__ == "__main__":
    args = sys.argv[1:]
    split = "target_test"
    if args[:1] == ["--split"]:
        split, args = args[1], args[2:]
    out, runs = Path(args[0]), args[1:]
    result = {}
    for run in runs:
        result[run] = breakdown(run, split)
        print(run, {k: v["wer"] for k, v in result[run].items()}, flush=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
