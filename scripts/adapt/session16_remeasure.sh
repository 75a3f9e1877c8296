#!/bin/bash
# session 16, after a reviewer found the paired timer kept subnormals while Trainer.fit flushes
# them: the paired calls again with the fixed timer — the table's paired column (three calls per
# row, runs/adapt-table16b) and six calls of the SiLU row (runs/ab16b/).
set -e
cd "$(dirname "$0")/../.."  # the repository root
mkdir -p runs/adapt-table16b runs/ab16b
AT=('encoder.layers.[123].**.*norm*' 'encoder.layers.[123].**.depthwise')
ab() { .venv/bin/python benchmarks/adapter_step_ab.py runs/demo13 --set train.precision=fp32 --a full --b adapters bottleneck=64 "$@" --also-train "${AT[@]}"; }
for i in 1 2 3 4 5 6; do ab adapter_act=silu > runs/ab16b/silu-$i.json; done
ab > runs/ab16b/relu-1.json
ab adapter_act=silu adapter_conv_kernel=31 > runs/ab16b/conv-silu-1.json
cp runs/adapt-table15/adaptation.json runs/adapt-table16b/
.venv/bin/python benchmarks/adaptation.py runs/demo13 --paired 3 --paired-only --out runs/adapt-table16b
echo DONE
