#!/bin/bash
# session 16: variant V (pre-registered in the session notes) — SiLU adapters r=64 with the norms of
# blocks 1-3 trained but not their depthwise kernels; 6e-3, cosine, 300 updates, seeds as given.
set -e
cd "$(dirname "$0")/../.."  # the repository root
V="adapters r=64 + norms (blocks 1-3), SiLU"
for s in "$@"; do
  .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 --scheds cosine --methods --grid \
    --variant "$V" adapters adapt.bottleneck=64 adapt.adapter_act=silu \
    "adapt.also_train=['encoder.layers.[123].**.*norm*']" \
    --set train.precision=fp32 seed=$s --out runs/adapt-v16-seed$s
done
