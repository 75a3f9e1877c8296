#!/bin/bash
# SUPERSEDED: run with the timer of d097cf7, which kept subnormals (Trainer.fit flushes them);
# scripts/adapt/session16_remeasure.sh repeats it with the flushing timer. Kept: docs cite its data.
# session 16: the paired step-time column for the session-15 table (its runs are not retrained: the
# code of this session gives them the same WERs). Three calls of benchmarks/adapter_step_ab.py per
# trained row against full fine-tuning, 60 target_train batches each, into runs/adapt-table16.
set -e
cd "$(dirname "$0")/../.."  # the repository root
mkdir -p runs/adapt-table16
cp runs/adapt-table15/adaptation.json runs/adapt-table16/
.venv/bin/python benchmarks/adaptation.py runs/demo13 --paired 3 --paired-only --out runs/adapt-table16
