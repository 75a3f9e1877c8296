#!/bin/bash
# The speed check proposed in session 17 for issue 7's "≥ 1.5x faster steps", to be fixed before
# its data: N (default 9) calls of the paired timer (benchmarks/adapter_step_ab.py: the second
# model on a batch steps it padded, medians over all batches), full fine-tuning against the SiLU
# row, alone on a quiet machine; then the mean speed-up and its 95% t-interval. The allocator: as
# proposed, glibc's malloc told not to trim or mmap (neither model faults pages in after warm-up) —
# session 17 set GLIBC_TUNABLES here (trim threshold 4 GiB, applied at start); since session 18 the
# timer calls semiasr.malloc.tune_malloc as the `semiasr` command does (trim threshold 1 GiB,
# applied after start; the default unless SEMIASR_MALLOC=system, which session 18 also ran it
# under). B_EXTRA adds adapter settings to the row (session 20: B_EXTRA="adapter_conv_kernel=31"
# times the convolution + SiLU row); SET_EXTRA adds config overrides for both (session 21:
# SET_EXTRA='data.augment.noise_snr_db=[] data.augment.reverb_prob=0 data.augment.telephone_prob=0'
# keeps a base trained with waveform augmentation on cached features, as its adaptation runs). Prints the ratio of medians per call with its mean and 95%
# t-interval, and the ratio of mean steps per call (what a run costs: the measure since session 19)
# with its own. Usage, from anywhere:
#   [B_EXTRA="KEY=VALUE ..."] [SET_EXTRA="KEY=VALUE ..."] scripts/adapt/speed_check.sh [N] [base run, default runs/demo13]
set -e
cd "$(dirname "$0")/../.."  # the repository root
N=${1:-9}
RUN=${2:-runs/demo13}
OUT=runs/speed-check-$(date -u +%Y%m%dT%H%M%S)
mkdir -p "$OUT"
export SEMIASR_MALLOC=${SEMIASR_MALLOC:-tuned}  # session 18 ran it tuned, then under SEMIASR_MALLOC=system
AT=('encoder.layers.[123].**.*norm*' 'encoder.layers.[123].**.depthwise')
read -ra BX <<< "${B_EXTRA:-}"  # split on spaces, never glob-expanded
read -ra SX <<< "${SET_EXTRA:-}"
for i in $(seq 1 "$N"); do
  .venv/bin/python benchmarks/adapter_step_ab.py "$RUN" --set train.precision=fp32 "${SX[@]}" --a full \
    --b adapters bottleneck=64 adapter_act=silu "${BX[@]}" --also-train "${AT[@]}" > "$OUT/call-$i.json"
done
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, "scripts/adapt")
from ci95 import mean_ci95
calls = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("call-*.json"))]
r = [1 / c["b_over_a"] for c in calls]
# the ratio of mean steps too (what a run costs; the timer's outputs before session 18 lack it)
by_mean = [round(1 / c["b_over_a_mean"], 3) for c in calls if "b_over_a_mean" in c]
print(json.dumps({"calls": [round(x, 3) for x in r], **mean_ci95(r),
                  "calls_by_mean_steps": by_mean,
                  "by_mean_steps": mean_ci95(by_mean) if len(by_mean) > 1 else None,
                  "out": sys.argv[1]}))
PY
