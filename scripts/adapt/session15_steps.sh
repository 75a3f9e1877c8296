#!/bin/bash
# session 15: step times of full fine-tuning and the SiLU row in separate processes, three pairs run
# one after another in alternating order (the table's round robin gave full 0.449 / 0.189 / 0.224 s
# in its three rounds: one pair per round is too noisy for a 1.5x line). 6e-3, seed 0, as the table.
# Session 17 ran it again after its bit-identical speed-up (the WERs must not move) as
# `scripts/adapt/session15_steps.sh adapt-steps17`: the argument names the runs (runs/<it>-<pair>-*).
set -e
cd "$(dirname "$0")/../.."  # the repository root
OUT=${1:-adapt-steps15}
AT="adapt.also_train=['encoder.layers.[123].**.*norm*', 'encoder.layers.[123].**.depthwise']"
ROW="adapters r=64 + norms + depthwise (blocks 1-3), SiLU"
full() { .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 --scheds cosine --methods full --grid \
  --set train.precision=fp32 --out "runs/$OUT-$1-full"; }
row() { .venv/bin/python benchmarks/adaptation.py runs/demo13 --steps 300 --lr 0.006 --scheds cosine --methods --grid \
  --variant "$ROW" adapters adapt.bottleneck=64 adapt.adapter_act=silu "$AT" \
  --set train.precision=fp32 --out "runs/$OUT-$1-row"; }
full 1; row 1
row 2; full 2
full 3; row 3
echo DONE
