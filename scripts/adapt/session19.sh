#!/bin/bash
# session 19: issue 7's two halves re-measured after the fused joiner + RNN-T loss got its CPU pass
# (semiasr.semiring.joint: the loss's numbers moved by float32 rounding, so every WER may move).
# Full fine-tuning and the SiLU row (adapters r=64, SiLU, + norms and depthwise kernels of blocks
# 1-3; 6e-3 cosine, 300 updates, fp32, as the table) for each seed, each in a fresh process, the
# pair's order alternating with the seed. Prints the five-seed WER means (the quality half: the
# row's target test within 10% of full's) and the separate-run speed-up per pair (full's step_s
# over the row's: means of the trainer's step times) with its mean and 95% t-interval.
# LR (default 0.006) sets both methods' rate (part C ran LR=0.01); ONLY=full runs full fine-tuning
# alone and prints no summary (part D: LR=0.003 ONLY=full ... "1 2 3 4" adapt-s19full3). Usage:
#   [LR=0.01] scripts/adapt/session19.sh [SEEDS, default "0 1 2 3 4"] [OUTPREFIX, default adapt-s19]
set -e
cd "$(dirname "$0")/../.."  # the repository root
SEEDS=${1:-0 1 2 3 4}
OUT=${2:-adapt-s19}
LR=${LR:-0.006}
ONLY=${ONLY:-}
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
ROW="adapters r=64 + norms + depthwise (blocks 1-3), SiLU"
full() { .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr $LR --scheds cosine --methods full --grid \
  --set train.precision=fp32 seed=$1 --out "runs/$OUT-seed$1-full"; }
row() { .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr $LR --scheds cosine --methods --grid \
  --variant "$ROW" adapters adapt.bottleneck=64 adapt.adapter_act=silu "$AT" \
  --set train.precision=fp32 seed=$1 --out "runs/$OUT-seed$1-row"; }
for s in $SEEDS; do
  if [ "$ONLY" = full ]; then full "$s"; continue; fi
  if [ $((s % 2)) = 0 ]; then full "$s"; row "$s"; else row "$s"; full "$s"; fi
done
[ -n "$ONLY" ] && exit 0
.venv/bin/python - "$OUT" $SEEDS <<'PY'
import json, statistics, sys
from pathlib import Path
sys.path.insert(0, "scripts/adapt")
from ci95 import mean_ci95
out, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]]
def row(s, kind):
    return json.loads(Path(f"runs/{out}-seed{s}-{kind}/adaptation.json").read_text())["rows"][-1]
keys = ("target_dev_wer", "target_test_wer", "source_test_wer")
pairs = []
for s in seeds:
    f, r = row(s, "full"), row(s, "row")
    pairs.append({"seed": s, "full_ms": round(1000 * f["step_s"], 1), "row_ms": round(1000 * r["step_s"], 1),
                  "speedup": round(f["step_s"] / r["step_s"], 3),
                  "full_wer": [round(f[k], 2) for k in keys], "row_wer": [round(r[k], 2) for k in keys],
                  "max_rss_MiB": [f.get("max_rss_MiB"), r.get("max_rss_MiB")]})
mean = lambda kind, i: round(statistics.mean(p[kind][i] for p in pairs), 2)
full_test, row_test = mean("full_wer", 1), mean("row_wer", 1)
print(json.dumps({"pairs": pairs,
                  "full_mean_wer": [mean("full_wer", i) for i in range(3)],
                  "row_mean_wer": [mean("row_wer", i) for i in range(3)],
                  "row_behind_full_pct": round(100 * (row_test / full_test - 1), 2),
                  "quality_met": row_test <= 1.10 * full_test,
                  "speedup": mean_ci95([p["speedup"] for p in pairs])}, indent=1))
PY
