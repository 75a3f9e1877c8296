#!/bin/bash
# session 17: the fixed paired timer (the second model on a batch steps it padded, so both meet
# new shapes; medians over all batches), full fine-tuning against the SiLU row: six calls with
# glibc's default malloc, then three with malloc told not to trim or mmap (no page faults after
# warm-up, in either model). Run alone on the machine.
set -e
cd "$(dirname "$0")/../.."  # the repository root
mkdir -p runs/ab17
AT=('encoder.layers.[123].**.*norm*' 'encoder.layers.[123].**.depthwise')
ab() { .venv/bin/python benchmarks/adapter_step_ab.py runs/demo13 --set train.precision=fp32 --a full \
  --b adapters bottleneck=64 adapter_act=silu --also-train "${AT[@]}"; }
for i in 1 2 3 4 5 6; do ab > "runs/ab17/fixed-silu-$i.json"; done
NO_TRIM=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=67108864
for i in 1 2 3; do GLIBC_TUNABLES=$NO_TRIM ab > "runs/ab17/fixed-tun-silu-$i.json"; done
echo DONE
