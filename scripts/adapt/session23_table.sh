#!/bin/bash
# session 23: the adaptation table of docs/adaptation.md from the demo's source model, which since
# this session trains under multi-condition augmentation (src/semiasr/conf/demo.yaml; runs/mct21 is
# that recipe's run, made by `semiasr demo name=mct21 "data.augment.noise_snr_db=[0,30]"
# data.augment.noise_prob=0.3 data.augment.reverb_prob=0.2 data.augment.telephone_prob=0.2` before it
# became the default). Session 19's command otherwise: every method, rates 1e-3 / 3e-3 / 6e-3 under a
# cosine schedule for the searched rows, picked on target_dev with seed 0, each run in its own
# process; waveform augmentation off while adapting (SpecAugment on cached features, as every table);
# the SiLU row and the convolution row as variants; then two paired timer calls per row against full
# fine-tuning (benchmarks/adapter_step_ab.py). The goal's own figures (five seeds, two nine-call speed
# checks) are scripts/adapt/session21_mct.sh's and scripts/adapt/speed_check.sh's. Usage, from anywhere:
#   scripts/adapt/session23_table.sh [OUT, default runs/adapt-table23] [BASE, default runs/mct21]
set -e
cd "$(dirname "$0")/../.."  # the repository root
OUT=${1:-runs/adapt-table23}
BASE=${2:-runs/mct21}
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
ROW="adapters r=64 + norms + depthwise (blocks 1-3), SiLU"
CONV="conv adapters k=31 r=64 + norms + depthwise (blocks 1-3), SiLU"
.venv/bin/python benchmarks/adaptation.py "$BASE" --steps 300 --lrs 0.001 0.003 0.006 --scheds cosine \
    --grid full adapters hff+adapters \
    --variant "$ROW" adapters adapt.bottleneck=64 adapt.adapter_act=silu "$AT" \
    --variant "$CONV" adapters adapt.bottleneck=64 adapt.adapter_conv_kernel=31 adapt.adapter_act=silu "$AT" \
    --set train.precision=fp32 "data.augment.noise_snr_db=[]" data.augment.reverb_prob=0 \
          data.augment.telephone_prob=0 \
    --paired 2 --out "$OUT"
