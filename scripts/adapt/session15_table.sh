#!/bin/bash
# session 15: the adaptation table from runs/demo13 with the two SiLU rows (the adapters' bottleneck
# activation SiLU instead of ReLU, chosen on target_dev), then seeds 1-4 of the SiLU rows at the
# rate each picked (full fine-tuning's seeds 1-4 are those of session 14: the same code for it)
set -e
cd "$(dirname "$0")/../.."  # the repository root
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
ROW="adapters r=64 + norms + depthwise (blocks 1-3)"
CONV="conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)"
.venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lrs 0.001 0.003 0.006 --scheds cosine \
    --grid full adapters hff+adapters \
    --variant "$ROW" adapters adapt.bottleneck=64 "$AT" \
    --variant "$CONV" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 "$AT" \
    --variant "$ROW, SiLU" adapters adapt.bottleneck=64 adapt.adapter_act=silu "$AT" \
    --variant "$CONV, SiLU" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 adapt.adapter_act=silu "$AT" \
    --set train.precision=fp32 --out runs/adapt-table15 > runs/adapt-table15.log 2>&1
LRS=$(.venv/bin/python - <<'PY'
import json
rows = {r["label"]: r for r in json.load(open("runs/adapt-table15/adaptation.json"))["rows"]}
base = "adapters r=64 + norms + depthwise (blocks 1-3), SiLU"
conv = "conv adapters k=31 r=64 + norms + depthwise (blocks 1-3), SiLU"
print(rows[base]["lr"], rows[conv]["lr"])
PY
)
set -- $LRS
echo "picked: row+SiLU $1 conv+SiLU $2" >> runs/adapt-table15.log
for s in 1 2 3 4; do
  .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr $1 --scheds cosine --methods --grid \
    --variant "$ROW, SiLU" adapters adapt.bottleneck=64 adapt.adapter_act=silu "$AT" \
    --set train.precision=fp32 seed=$s --out runs/adapt-table15-seed$s-row >> runs/adapt-table15.log 2>&1
  .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr $2 --scheds cosine --methods --grid \
    --variant "$CONV, SiLU" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 adapt.adapter_act=silu "$AT" \
    --set train.precision=fp32 seed=$s --out runs/adapt-table15-seed$s-conv >> runs/adapt-table15.log 2>&1
done
echo DONE >> runs/adapt-table15.log
