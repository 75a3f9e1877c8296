#!/bin/bash
# session 18: step times of full fine-tuning and the SiLU row in separate processes (the table's
# design: benchmarks/adaptation.py runs each row in a fresh process, which tunes glibc's malloc as
# `semiasr` does unless SEMIASR_MALLOC=system — session 18's first runs were tuned, its test C
# untuned), N pairs (default 5) one after another in alternating order; 6e-3
# cosine, seed 0, 300 updates, as the table. Each pair's speed-up is full's step_s / the row's; the
# mean and 95% t-interval over the pairs are printed at the end. Seed 0 reproduces session 15's
# WERs exactly when the code's numbers have not changed. Usage, from anywhere:
#   scripts/adapt/session18_steps.sh [N] [OUTPREFIX, default adapt-steps18]
set -e
cd "$(dirname "$0")/../.."  # the repository root
export SEMIASR_MALLOC=${SEMIASR_MALLOC:-tuned}
N=${1:-5}
OUT=${2:-adapt-steps18}
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
ROW="adapters r=64 + norms + depthwise (blocks 1-3), SiLU"
full() { .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 --scheds cosine --methods full --grid \
  --set train.precision=fp32 --out "runs/$OUT-$1-full"; }
row() { .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 --scheds cosine --methods --grid \
  --variant "$ROW" adapters adapt.bottleneck=64 adapt.adapter_act=silu "$AT" \
  --set train.precision=fp32 --out "runs/$OUT-$1-row"; }
for i in $(seq 1 "$N"); do
  if [ $((i % 2)) = 1 ]; then full "$i"; row "$i"; else row "$i"; full "$i"; fi
done
.venv/bin/python - "$OUT" "$N" <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, "scripts/adapt")
from ci95 import mean_ci95
out, n = sys.argv[1], int(sys.argv[2])
def row(i, kind):
    return json.loads(Path(f"runs/{out}-{i}-{kind}/adaptation.json").read_text())["rows"][-1]
pairs = []
for i in range(1, n + 1):
    f, r = row(i, "full"), row(i, "row")
    pairs.append({"pair": i, "full_ms": round(1000 * f["step_s"], 1), "row_ms": round(1000 * r["step_s"], 1),
                  "speedup": round(f["step_s"] / r["step_s"], 3),
                  "full_wer": [round(f[k], 2) for k in ("target_dev_wer", "target_test_wer", "source_test_wer")],
                  "row_wer": [round(r[k], 2) for k in ("target_dev_wer", "target_test_wer", "source_test_wer")],
                  "max_rss_MiB": [f.get("max_rss_MiB"), r.get("max_rss_MiB")],
                  "malloc": [f.get("malloc"), r.get("malloc")]})
print(json.dumps({"pairs": pairs, **mean_ci95([p["speedup"] for p in pairs])}, indent=1))
PY
