#!/bin/bash
# Run on a lent GPU machine from the repository root, with .whl as for gpu_checks_s13.sh.
# Session 13, second call: the CUDA tests again after the session's objective, adaptation and
# trainer changes, plus the objective/adaptation unit tests with CUDA visible.
export PYTHONUNBUFFERED=1 PYTHONPATH=src:/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
timeout 200 python3 -m pytest -q -p no:cacheprovider -n 8 --timeout 150 \
  tests/unit/test_cuda_paths.py tests/unit/semiring/test_semiring_cuda.py \
  tests/unit/eval/test_eval_cli_device.py tests/unit/data/test_data_pseudo.py \
  tests/unit/models/test_models_objectives.py tests/unit/adapt tests/e2e/test_e2e_benchmarks.py \
  -k "not adaptation_table" 2>&1 | grep -v "PytestBenchmarkWarning\|warner(" | tail -15
python3 - <<'PY'
import torch
from semiasr.data.batch import Batch
from semiasr.models import ModelConfig, build_model
from semiasr.objectives import TransducerObjective
torch.manual_seed(0)
m = build_model(ModelConfig(kind="transducer", d_model=32, num_layers=1, num_heads=2), vocab_size=9, feat_dim=20).cuda()
f = torch.randn(3, 48, 20, device="cuda"); n = torch.tensor([48, 36, 5], device="cuda")
y = torch.tensor([[1, 2, 3], [4, 5, 0], [6, 0, 0]], device="cuda"); u = torch.tensor([3, 2, 1], device="cuda")
b = Batch(features=f, feature_lengths=n, tokens=y, token_lengths=u, texts=["a"] * 3, domains=torch.zeros(3, dtype=torch.long, device="cuda"), cut_ids=["0", "1", "2"])
loss, met = TransducerObjective()(m, b)
loss.backward()
print("CUDA logits pass with a frame-less utterance: loss", float(loss), "finite grads", all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None))
PY
