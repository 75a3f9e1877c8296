#!/bin/bash
# session 19: the adaptation table of docs/adaptation.md measured again from runs/demo13 on the code
# with the CPU passes of the fused joiner + RNN-T loss and the depthwise convolution (session 15's
# command: every method, rates 1e-3 / 3e-3 / 6e-3 under a cosine schedule for the searched rows,
# picked on target_dev with seed 0, each run in its own process; the five-seed figures of full
# fine-tuning and the SiLU row are scripts/adapt/session19.sh's). Usage, from anywhere:
#   scripts/adapt/session19_table.sh [OUT, default runs/adapt-table19]
set -e
cd "$(dirname "$0")/../.."  # the repository root
OUT=${1:-runs/adapt-table19}
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
ROW="adapters r=64 + norms + depthwise (blocks 1-3)"
CONV="conv adapters k=31 r=64 + norms + depthwise (blocks 1-3)"
.venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lrs 0.001 0.003 0.006 --scheds cosine \
    --grid full adapters hff+adapters \
    --variant "$ROW" adapters adapt.bottleneck=64 "$AT" \
    --variant "$CONV" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 "$AT" \
    --variant "$ROW, SiLU" adapters adapt.bottleneck=64 adapt.adapter_act=silu "$AT" \
    --variant "$CONV, SiLU" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 adapt.adapter_act=silu "$AT" \
    --set train.precision=fp32 --out "$OUT"
