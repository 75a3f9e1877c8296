#!/bin/bash
# session 17: variant P (pre-registered in the session notes) — the SiLU row with the prediction
# network frozen (adapt.train_decoder=false; the joiner and the CTC head still train); 6e-3,
# cosine, 300 updates, seeds as given.
set -e
cd "$(dirname "$0")/../.."  # the repository root
P="adapters r=64 + norms + depthwise (blocks 1-3), SiLU, prediction network frozen"
for s in "$@"; do
  .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 --scheds cosine --methods --grid \
    --variant "$P" adapters adapt.bottleneck=64 adapt.adapter_act=silu adapt.train_decoder=false \
    "adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise', 'joiner.**', 'ctc_head.**']" \
    --set train.precision=fp32 seed=$s --out runs/adapt-p17-seed$s
done
