"""The lattice functions on a CUDA device agree with the CPU (float64) and with torch / torchaudio.

Skipped where no CUDA device is present (CI has none): run on a GPU machine with
``pytest tests/unit/semiring/test_semiring_cuda.py``. The test past 2³¹ logits elements needs about
20 GB of free GPU memory and is skipped with less.
"""

from __future__ import annotations

import math
import os

import pytest
import torch

from semiasr import functional as F

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() and "SEMIASR_TEST_CUDA" not in os.environ,
    reason="no CUDA device here",
)

CUDA = torch.device(os.environ.get("SEMIASR_TEST_CUDA", "cuda"))  # another device: a dry run


def _ctc_batch(seed: int, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    b, t, v, s = 4, 23, 7, 6
    logits = torch.randn(b, t, v, generator=g, dtype=dtype)
    targets = torch.randint(1, v, (b, s), generator=g)
    il = torch.tensor([t, t - 3, 9, 2])  # the last one is infeasible for 3 labels with repeats
    tl = torch.tensor([s, 4, 3, 3])
    targets[3, :3] = torch.tensor([2, 2, 2])
    return logits, targets, il, tl


def _rnnt_batch(seed: int, dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(seed)
    b, t, u, v = 3, 11, 5, 6
    logits = torch.randn(b, t, u + 1, v, generator=g, dtype=dtype)
    targets = torch.randint(1, v, (b, u), generator=g, dtype=torch.int32)
    return logits, targets, torch.tensor([t, 7, 1]), torch.tensor([u, 2, 0])


def _both(fn, logits: torch.Tensor, *rest):
    """fn on the CPU and on CUDA → (cpu value, cpu grad, cuda value, cuda grad)."""
    out = []
    for dev in ("cpu", CUDA):
        x = logits.detach().to(dev, copy=True).requires_grad_(True)  # a fresh leaf per device
        args = [r.to(dev) if isinstance(r, torch.Tensor) else r for r in rest]
        value = fn(x, *args)
        value.sum().backward()
        out += [value.detach().cpu(), x.grad.cpu()]
    return out


CTC_FUNCTIONS = {
    "ctc_loss": lambda x, y, il, tl: F.ctc_loss(x.log_softmax(-1), y, il, tl, reduction="none"),
    "ctc_alignment_entropy": lambda x, y, il, tl: F.ctc_alignment_entropy(
        x.log_softmax(-1), y, il, tl
    ),
    "ctc_alignment_kl": lambda x, y, il, tl: F.ctc_alignment_kl(
        x.log_softmax(-1), (0.5 * x.detach()).log_softmax(-1), y, il, tl
    ),
    "ctc_occupancy": lambda x, y, il, tl: (
        F.ctc_occupancy(x.log_softmax(-1), y, il, tl)
        .mul(torch.arange(13, dtype=x.dtype, device=x.device))
        .sum((1, 2))
    ),
    "ctc_forced_align": lambda x, y, il, tl: F.ctc_forced_align(
        x.log_softmax(-1), y, il, tl
    ).score.nan_to_num(neginf=0.0),
}

RNNT_FUNCTIONS = {
    "rnnt_loss": lambda x, y, il, tl: F.rnnt_loss(x, y, il, tl, blank=0, reduction="none"),
    "rnnt_alignment_entropy": lambda x, y, il, tl: F.rnnt_alignment_entropy(x, y, il, tl, blank=0),
    "rnnt_alignment_kl": lambda x, y, il, tl: F.rnnt_alignment_kl(
        x, 0.5 * x.detach(), y, il, tl, blank=0
    ),
    "rnnt_occupancy": lambda x, y, il, tl: (
        F.rnnt_occupancy(x, y, il, tl, blank=0)
        .label.mul(torch.arange(6, dtype=x.dtype, device=x.device))
        .sum((1, 2))
    ),
    "rnnt_forced_align": lambda x, y, il, tl: F.rnnt_forced_align(x, y, il, tl, blank=0).score,
}


@pytest.mark.parametrize("name", list(CTC_FUNCTIONS))
def test_ctc_functions_on_cuda_equal_cpu_float64(name):
    logits, targets, il, tl = _ctc_batch(1)
    cpu_v, cpu_g, gpu_v, gpu_g = _both(CTC_FUNCTIONS[name], logits, targets, il, tl)
    torch.testing.assert_close(gpu_v, cpu_v, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(gpu_g, cpu_g, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", list(RNNT_FUNCTIONS))
def test_rnnt_functions_on_cuda_equal_cpu_float64(name):
    logits, targets, il, tl = _rnnt_batch(2)
    cpu_v, cpu_g, gpu_v, gpu_g = _both(RNNT_FUNCTIONS[name], logits, targets, il, tl)
    torch.testing.assert_close(gpu_v, cpu_v, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(gpu_g, cpu_g, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_ctc_loss_on_cuda_equals_torch_cuda(dtype, tol):
    g = torch.Generator().manual_seed(3)
    b, t, v, s = 8, 120, 40, 30
    logits = torch.randn(b, t, v, generator=g, dtype=dtype).to(CUDA)
    targets = torch.randint(1, v, (b, s), generator=g).to(CUDA)
    il = torch.randint(90, t + 1, (b,), generator=g).to(CUDA)
    tl = torch.randint(10, s + 1, (b,), generator=g).to(CUDA)
    ours_x = logits.clone().requires_grad_(True)
    ref_x = logits.clone().requires_grad_(True)
    ours = F.ctc_loss(ours_x.log_softmax(-1), targets, il, tl)
    ref = torch.nn.functional.ctc_loss(ref_x.log_softmax(-1).transpose(0, 1), targets, il, tl)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref, rtol=tol, atol=tol)
    torch.testing.assert_close(ours_x.grad, ref_x.grad, rtol=tol, atol=tol)


def test_rnnt_loss_on_cuda_equals_torchaudio_cuda():
    ta = pytest.importorskip("torchaudio.functional", reason="torchaudio is not installed")
    g = torch.Generator().manual_seed(4)
    b, t, u, v = 4, 60, 15, 50
    logits = torch.randn(b, t, u + 1, v, generator=g).to(CUDA)
    targets = torch.randint(1, v, (b, u), generator=g, dtype=torch.int32).to(CUDA)
    il = torch.tensor([t, 50, 33, 2], dtype=torch.int32, device=CUDA)
    tl = torch.tensor([u, 9, 15, 1], dtype=torch.int32, device=CUDA)
    ours_x = logits.clone().requires_grad_(True)
    ref_x = logits.clone().requires_grad_(True)
    ours = F.rnnt_loss(ours_x, targets, il, tl, blank=0)
    ref = ta.rnnt_loss(ref_x, targets, il, tl, blank=0)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours_x.grad, ref_x.grad, rtol=1e-4, atol=1e-6)


def _free_gpu_bytes() -> int:
    if CUDA.type != "cuda":
        return 0
    free, _total = torch.cuda.mem_get_info()
    return free


@pytest.mark.slow
def test_rnnt_loss_past_2_31_logits_elements_on_cuda():
    """All-zero logits: every arc has probability 1/V and every path T + U arcs, so
    −log Z = (T + U) log V − log C(T − 1 + U, U); the gradient past element 2³¹ must equal
    softmax·γ − occupancies, whose tables do not depend on V (checked against a small-V run)."""
    t, u = 400, 99
    v = 2**31 // (t * (u + 1)) + 2  # just past 2³¹ elements
    need = 2 * t * (u + 1) * v * 4 + (1 << 30)
    if _free_gpu_bytes() < need:
        pytest.skip(f"needs {need / 2**30:.1f} GiB of free GPU memory")
    assert t * (u + 1) * v > 2**31
    targets = torch.randint(1, v, (1, u), dtype=torch.int32, device=CUDA)
    il = torch.tensor([t], device=CUDA)
    tl = torch.tensor([u], device=CUDA)
    logits = torch.zeros(1, t, u + 1, v, device=CUDA, requires_grad=True)
    loss = F.rnnt_loss(logits, targets, il, tl, blank=0, reduction="sum")
    expected = (t + u) * math.log(v) - (math.lgamma(t + u) - math.lgamma(u + 1) - math.lgamma(t))
    assert abs(loss.item() - expected) <= 1e-5 * expected
    loss.backward()
    grad = logits.grad
    # the same lattice with a small vocabulary gives the arc occupancies, which do not depend on V
    small = torch.zeros(1, t, u + 1, 4, dtype=torch.float64, requires_grad=True)
    occ = F.rnnt_occupancy(
        small.detach(), torch.ones(1, u, dtype=torch.int32), il.cpu(), tl.cpu(), 0
    )
    o_b, o_l = occ.blank[0], occ.label[0]
    gamma = o_b + o_l
    assert ((t - 1) * (u + 1) + u) * v > 2**31  # the last row lies wholly past element 2³¹
    for tt, uu in [(t - 1, u), (t - 2, u - 1), (t // 2, u // 2), (t - 1, u - 5)]:
        row = grad[0, tt, uu].double().cpu()
        lab = int(targets[0, uu]) if uu < u else None
        want = torch.full((v,), float(gamma[tt, uu]) / v, dtype=torch.float64)
        want[0] -= float(o_b[tt, uu])
        if lab is not None:
            want[lab] -= float(o_l[tt, uu])
        torch.testing.assert_close(row, want, rtol=1e-4, atol=1e-7)
    # every row's gradient sums to zero (softmax · γ minus the γ used by its two arcs)
    assert grad.sum(-1).abs().max().item() < 1e-4
