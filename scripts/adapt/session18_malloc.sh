#!/bin/bash
# session 18: glibc's malloc tuned (SEMIASR_MALLOC=tuned) or not, in whole adaptation runs of full
# fine-tuning and of the SiLU row (300 updates, 6e-3 cosine, seed 0, as the table; each in its own
# process): peak resident memory (max_rss_MiB) and mean step time (step_s), three runs per
# allocator and method in the order system, tuned, tuned, system, system, tuned (drift balanced).
# Prints the means per method and allocator. Usage, from anywhere:
#   scripts/adapt/session18_malloc.sh [OUTPREFIX, default malloc18]
set -e
cd "$(dirname "$0")/../.."  # the repository root
OUT=${1:-malloc18}
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
ROW="adapters r=64 + norms + depthwise (blocks 1-3), SiLU"
full() { SEMIASR_MALLOC=$1 .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 \
  --scheds cosine --methods full --grid --set train.precision=fp32 --out "runs/$OUT-full-$1-$2"; }
row() { SEMIASR_MALLOC=$1 .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 \
  --scheds cosine --methods --grid --variant "$ROW" adapters adapt.bottleneck=64 adapt.adapter_act=silu "$AT" \
  --set train.precision=fp32 --out "runs/$OUT-row-$1-$2"; }
i=0
for m in system tuned tuned system system tuned; do
  i=$((i + 1))
  full "$m" "$i"
done
i=0
for m in system tuned tuned system system tuned; do
  i=$((i + 1))
  row "$m" "$i"
done
.venv/bin/python - "$OUT" <<'PY'
import json, statistics, sys
from pathlib import Path
out = sys.argv[1]
res = {}
for d in sorted(Path("runs").glob(f"{out}-*-*-*")):
    _, method, alloc, i = d.name.rsplit("-", 3)
    r = json.loads((d / "adaptation.json").read_text())["rows"][-1]
    res.setdefault(method, {}).setdefault(alloc, []).append(
        {"run": int(i), "step_ms": round(1000 * r["step_s"], 1), "max_rss_MiB": round(r["max_rss_MiB"], 1),
         "malloc": r["malloc"], "target_test_wer": round(r["target_test_wer"], 2)})
summary = {m: {a: {"step_ms": round(statistics.mean(x["step_ms"] for x in v), 1),
                   "max_rss_MiB": round(statistics.mean(x["max_rss_MiB"] for x in v), 1)}
               for a, v in by.items()} for m, by in res.items()}
print(json.dumps({"runs": res, "means": summary}, indent=1))
PY
