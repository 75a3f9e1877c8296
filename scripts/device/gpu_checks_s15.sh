#!/bin/bash
# Run on a lent GPU machine from the repository root, with .whl as for gpu_checks_s13.sh.
# Session 15: the convolution adapters (session 14) on CUDA: time_conv's block-Toeplitz path against
# cuDNN's depthwise convolution (float64 values and gradients, float32), a conv + SiLU adapter
# training step of a small transducer under bf16 autocast, and the adaptation unit tests with CUDA
# visible.
export PYTHONUNBUFFERED=1 PYTHONPATH=src:/tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 - <<'PY'
import torch
import torch.nn.functional as F
from torch import nn
from semiasr.adapt import prepare_adaptation
from semiasr.adapt.adapters import time_conv
from semiasr.data.batch import Batch
from semiasr.models import ModelConfig, build_model
from semiasr.objectives import TransducerObjective

dev = "cuda"
g = torch.Generator().manual_seed(0)
worst = {}
for dtype, tol in ((torch.float64, 1e-11), (torch.float32, 1e-4)):
    for t, k, pad in ((77, 7, (3, 3)), (200, 31, (30, 0)), (5, 31, (15, 15)), (400, 31, (15, 15))):
        conv = nn.Conv1d(64, 64, k, groups=64).to(dev, dtype)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g, dtype=dtype))
        h = torch.randn(8, t, 64, generator=g, dtype=dtype).to(dev).requires_grad_()
        ours = time_conv(h, conv, pad)
        ref = conv(F.pad(h.transpose(1, 2), pad)).transpose(1, 2)
        w = torch.randn(ours.shape, generator=g, dtype=dtype).to(dev)
        go = torch.autograd.grad((ours * w).sum(), (h, conv.weight, conv.bias))
        gr = torch.autograd.grad((ref * w).sum(), (h, conv.weight, conv.bias))
        errs = [float((a - b).abs().max() / b.abs().max().clamp(min=1e-30)) for a, b in [(ours.detach(), ref.detach()), *zip(go, gr)]]
        worst[str(dtype)] = max(worst.get(str(dtype), 0.0), *errs)
        assert max(errs) < tol, (dtype, t, k, pad, errs)
print("time_conv on CUDA vs cuDNN, worst relative error (value, grads):", worst)

torch.manual_seed(0)
for causal in (False, True):
    m = build_model(ModelConfig(kind="transducer", d_model=32, num_layers=2, num_heads=2, causal=causal), vocab_size=9, feat_dim=20)
    prepare_adaptation(m, "adapters", bottleneck=16, adapter_conv_kernel=7, adapter_act="silu")
    m = m.to(dev)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    f = torch.randn(3, 64, 20, device=dev); n = torch.tensor([64, 40, 24], device=dev)
    y = torch.tensor([[1, 2, 3], [4, 5, 0], [6, 0, 0]], device=dev); u = torch.tensor([3, 2, 1], device=dev)
    b = Batch(features=f, feature_lengths=n, tokens=y, token_lengths=u, texts=["a"] * 3, domains=torch.zeros(3, dtype=torch.long, device=dev), cut_ids=["0", "1", "2"])
    losses = []
    for step in range(5):
        opt.zero_grad()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, _ = TransducerObjective()(m, b)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    kern = [mod.conv.weight for mod in m.adapters.values() if getattr(mod, "conv", None) is not None]
    moved = max(float((w[:, 0] - torch.nn.functional.one_hot(torch.tensor(6 if causal else 3), 7).to(w)).abs().max()) for w in kern)
    print(f"causal={causal}: conv+SiLU adapters, bf16 autocast on CUDA, losses {[round(x, 3) for x in losses]}, kernels moved {moved:.2e}")
    assert all(x == x for x in losses) and losses[-1] < losses[0] and moved > 0
PY
timeout 240 python3 -m pytest -q -p no:cacheprovider -n 8 --timeout 200 tests/unit/adapt tests/unit/test_cuda_paths.py 2>&1 | grep -v "PytestBenchmarkWarning\|warner(" | tail -6
