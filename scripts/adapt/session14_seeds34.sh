#!/bin/bash
# session 14: seeds 3 and 4 of the three key rows at 6e-3 (quality; the code at HEAD)
cd "$(dirname "$0")/../.."  # the repository root
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
for s in 3 4; do
  .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 --scheds cosine --methods full --grid \
    --variant "adapters r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 "$AT" \
    --variant "conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 "$AT" \
    --set train.precision=fp32 seed=$s --out runs/adapt-table14-seed$s
done
echo DONE
