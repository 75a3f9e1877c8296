#!/bin/bash
# session 23, descriptive: how much of the convolution row's higher speed-up is the fused loss's
# sparse backward and how much the machine's hour? N (default 4) pairs of paired timer calls
# (benchmarks/adapter_step_ab.py, the speed check's settings), each pair one call with the loss's
# backward over every lattice cell (--loss-every-cell, the code before session 23) and one with the
# occupancy threshold, alternating which goes first; prints the ratio of mean steps of each call.
# Usage, from anywhere: scripts/adapt/session23_attribution.sh [N] [base run, default runs/mct21]
set -e
cd "$(dirname "$0")/../.."  # the repository root
N=${1:-4}
RUN=${2:-runs/mct21}
OUT=runs/s23-attribution-$(date -u +%Y%m%dT%H%M%S)
mkdir -p "$OUT"
AT=('encoder.layers.[123].**.*norm*' 'encoder.layers.[123].**.depthwise')
SX=('data.augment.noise_snr_db=[]' data.augment.reverb_prob=0 data.augment.telephone_prob=0)
call() {  # $1: file name, then extra flags
  local f=$1; shift
  .venv/bin/python benchmarks/adapter_step_ab.py "$RUN" --set train.precision=fp32 "${SX[@]}" --a full \
    --b adapters bottleneck=64 adapter_act=silu adapter_conv_kernel=31 --also-train "${AT[@]}" "$@" \
    > "$OUT/$f.json"
}
for i in $(seq 1 "$N"); do
  if (( i % 2 )); then call "every-$i" --loss-every-cell; call "sparse-$i"
  else call "sparse-$i"; call "every-$i" --loss-every-cell; fi
done
.venv/bin/python - "$OUT" <<'PY'
import json, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
for kind in ("every", "sparse"):
    calls = [json.loads(p.read_text()) for p in sorted(out.glob(f"{kind}-*.json"))]
    r = [1 / c["b_over_a_mean"] for c in calls]
    full = [1000 * c["a_mean_s"] for c in calls]
    row = [1000 * c["b_mean_s"] for c in calls]
    print(kind, "ratio of mean steps", [round(x, 3) for x in r], "mean", round(statistics.mean(r), 3),
          "| full ms", [round(x, 1) for x in full], "| row ms", [round(x, 1) for x in row])
PY
