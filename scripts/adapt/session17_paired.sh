#!/bin/bash
# session 17: the fixed paired timer (the second model on a batch steps it padded, so both meet
# new shapes; medians over all batches) with glibc's malloc told not to trim or mmap (no page
# faults after warm-up, in either model): three more calls of the SiLU row and three each of the
# issue's two named rows (default adapters, HFF + adapters), against full fine-tuning.
set -e
cd "$(dirname "$0")/../.."  # the repository root
mkdir -p runs/ab17
export GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=67108864
AT=('encoder.layers.[123].**.*norm*' 'encoder.layers.[123].**.depthwise')
ab() { .venv/bin/python benchmarks/adapter_step_ab.py runs/demo13 --set train.precision=fp32 --a full "$@"; }
for i in 4 5 6; do ab --b adapters bottleneck=64 adapter_act=silu --also-train "${AT[@]}" > runs/ab17/fixed-tun-silu-$i.json; done
for i in 1 2 3; do ab --b adapters > runs/ab17/fixed-tun-adapters-$i.json; done
for i in 1 2 3; do ab --b hff+adapters > runs/ab17/fixed-tun-hffadapters-$i.json; done
echo DONE
