#!/bin/bash
# session 14, after the block-Toeplitz convolution: full and the convolution row again (rates searched on dev, round robin), then seeds 1-2
cd "$(dirname "$0")/../.."  # the repository root
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
.venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lrs 0.001 0.003 0.006 --scheds cosine \
    --methods full --grid full adapters \
    --variant "conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 "$AT" \
    --set train.precision=fp32 --out runs/adapt-table14b
LR=$(.venv/bin/python -c "
import json; rows = {r['label']: r for r in json.load(open('runs/adapt-table14b/adaptation.json'))['rows']}
print(rows['conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)']['lr'], rows['full']['lr'])")
set -- $LR
echo "picked: conv $1 full $2"
for s in 1 2; do
  .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr $1 --scheds cosine --methods full --grid \
    --variant "conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 "$AT" \
    --set train.precision=fp32 seed=$s --out runs/adapt-table14b-seed$s
done
echo DONE
