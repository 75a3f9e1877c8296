#!/bin/bash
# SUPERSEDED: run with the timer of d097cf7, which kept subnormals (Trainer.fit flushes them);
# scripts/adapt/session16_remeasure.sh repeats it with the flushing timer. Kept: docs cite its data.
# session 16: paired step timing (benchmarks/adapter_step_ab.py, whose step is now the trainer's
# update: forward, backward, gradient clipping, the run's fused AdamW) of full fine-tuning against
# the SiLU row, six calls one after another (each call alternates the order batch by batch), then
# the ReLU row and the convolution + SiLU row once each; one JSON per call in runs/ab16/.
set -e
cd "$(dirname "$0")/../.."  # the repository root
mkdir -p runs/ab16
AT=('encoder.layers.[123].**.*norm*' 'encoder.layers.[123].**.depthwise')
ab() { .venv/bin/python benchmarks/adapter_step_ab.py runs/demo13 --a full --b adapters bottleneck=64 "$@" --also-train "${AT[@]}"; }
for i in 1 2 3 4 5 6; do ab adapter_act=silu > runs/ab16/silu-$i.json; done
ab > runs/ab16/relu-1.json
ab adapter_act=silu adapter_conv_kernel=31 > runs/ab16/conv-silu-1.json
echo DONE
