#!/bin/bash
# session 14: the adaptation table from runs/demo13, then seeds 1 and 2 of the key rows
set -e
cd "$(dirname "$0")/../.."  # the repository root
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
.venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lrs 0.001 0.003 0.006 --scheds cosine \
    --grid full adapters hff+adapters \
    --variant "adapters r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 "$AT" \
    --variant "conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 "$AT" \
    --set train.precision=fp32 --out runs/adapt-table14 > runs/adapt-table14.log 2>&1
LRS=$(.venv/bin/python - <<'PY'
import json
rows = {r["label"]: r for r in json.load(open("runs/adapt-table14/adaptation.json"))["rows"]}
print(" ".join(str(rows[k]["lr"]) for k in ("full", "adapters r=64 + norms + depthwise (blocks 1-3)", "conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)")))
PY
)
set -- $LRS
echo "picked: full $1 row $2 conv $3" >> runs/adapt-table14.log
for s in 1 2; do
  if [ "$1" = "$2" ] && [ "$2" = "$3" ]; then
    .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr $1 --scheds cosine --methods full --grid \
      --variant "adapters r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 "$AT" \
      --variant "conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 "$AT" \
      --set train.precision=fp32 seed=$s --out runs/adapt-table14-seed$s >> runs/adapt-table14.log 2>&1
  else
    .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr $1 --scheds cosine --methods full --grid \
      --set train.precision=fp32 seed=$s --out runs/adapt-table14-seed$s-full >> runs/adapt-table14.log 2>&1
    .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr $2 --scheds cosine --methods --grid \
      --variant "adapters r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 "$AT" \
      --set train.precision=fp32 seed=$s --out runs/adapt-table14-seed$s-row >> runs/adapt-table14.log 2>&1
    .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr $3 --scheds cosine --methods --grid \
      --variant "conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 "$AT" \
      --set train.precision=fp32 seed=$s --out runs/adapt-table14-seed$s-conv >> runs/adapt-table14.log 2>&1
  fi
done
echo DONE >> runs/adapt-table14.log
