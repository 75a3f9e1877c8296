#!/bin/bash
# Run on a lent GPU machine from the repository root, with .whl (the wheels of semiasr's
# dependencies that machine lacks), .fsdd (a copy of ../shared/data/fsdd) and .devrun/fsdd-s0 (runs/fsdd-s0
# with config.yaml's data.root set to .fsdd/fsdd, only checkpoints/averaged.pt) and .devrun/halfA.jsonl
# (benchmarks/fsdd_self_training.py's half A of the test speakers, audio paths into .fsdd) beside it.
# Session 13 device checks (one call). Every step has its own time limit; logs and JSON go to $OUT.
export PYTHONUNBUFFERED=1 PYTHONPATH=src:/tmp/site
T0=$(date +%s)
step() { echo; echo "=== [$(( $(date +%s) - T0 )) s] $*"; }
step install
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchaudio; print(torch.__version__, torchaudio.__version__, torch.cuda.get_device_name())"
R=.devrun/fsdd-s0

step "1 CUDA tests"
timeout 120 python3 -m pytest -q -p no:cacheprovider -n 8 --timeout 100 \
  tests/unit/test_cuda_paths.py tests/unit/semiring/test_semiring_cuda.py \
  tests/unit/eval/test_eval_cli_device.py tests/unit/data/test_data_pseudo.py \
  tests/e2e/test_e2e_benchmarks.py 2>&1 | tail -25

step "2 decode / transcribe / pseudo-label: CUDA against CPU on the FSDD test speakers"
for dev in cpu cuda; do
  timeout 60 python3 -m semiasr decode $R .devrun/halfA.jsonl --checkpoint averaged --device $dev --out $OUT/dec_greedy_$dev.jsonl 2>&1 | tail -3
  timeout 90 python3 -m semiasr decode $R .devrun/halfA.jsonl --checkpoint averaged --method beam --beam 4 --device $dev --out $OUT/dec_beam_$dev.jsonl 2>&1 | tail -3
done
python3 - <<'EOF'
import json, os
O = os.environ["OUT"]
for m in ("greedy", "beam"):
    try:
        a, b = ({j["id"]: j for j in map(json.loads, open(f"{O}/dec_{m}_{d}.jsonl"))} for d in ("cpu", "cuda"))
    except Exception as e:  # noqa: BLE001
        print(m, "missing", e); continue
    diff = [k for k in a if a[k].get("hyp") != b.get(k, {}).get("hyp")]
    print(f"{m}: {len(a)} cpu / {len(b)} cuda utterances, {len(diff)} hypotheses differ", diff[:5])
EOF
timeout 60 python3 -m semiasr transcribe $R .fsdd/fsdd/recordings/0_nicolas_0.wav .fsdd/fsdd/recordings/7_theo_3.wav --checkpoint averaged --device cuda 2>&1 | tail -4
for dev in cpu cuda; do
  timeout 120 python3 -m semiasr pseudo-label $R --split .devrun/halfA.jsonl --checkpoint averaged --candidates train --balance --neighbours 5 --device $dev --out $OUT/pl_$dev.jsonl 2>&1 | tail -2
done
python3 - <<'EOF'
import json, os
O = os.environ["OUT"]
try:
    a, b = ({j["id"]: j for j in map(json.loads, open(f"{O}/pl_{d}.jsonl"))} for d in ("cpu", "cuda"))
    diff = [k for k in a if a[k]["text"] != b.get(k, {}).get("text")]
    dp = max(abs(a[k]["pl_agreement"] - b[k]["pl_agreement"]) for k in a if k in b)
    print(f"pseudo-label: {len(a)} cpu / {len(b)} cuda, {len(diff)} labels differ, max |share diff| {dp:.2e}")
except Exception as e:  # noqa: BLE001
    print("pseudo-label compare failed", e)
EOF

step "3 train_throughput --device cuda (peer: torchaudio in python3)"
for p in bf16 fp32; do
  timeout 80 python3 benchmarks/train_throughput.py --device cuda --precision $p --rounds 20 --budget-s 40 \
    --ref-python python3 --json $OUT/tt_cuda_$p.json 2>&1 | tail -8
done

step "4 decode_speed --device cuda"
timeout 70 python3 benchmarks/decode_speed.py --device cuda --json $OUT/decode_speed_cuda.json 2>&1 | tail -16

step "5 losses_cuda (entropy now float64)"
timeout 70 python3 benchmarks/losses_cuda.py --repeats 3 --out $OUT/losses_cuda.json 2>&1 | tail -25
step done
