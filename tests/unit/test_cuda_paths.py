"""CUDA paths of public functions that ``tests/unit/semiring/test_semiring_cuda.py`` leaves out: the
blocked joiner + RNN-T loss, FAdam, AdamW from ``build_optimizer``, a transducer's training step and
its searches, each on CUDA against the CPU in float64 (values and gradients).

Skipped where no CUDA device is present (CI has none). ``SEMIASR_TEST_CUDA=cpu`` runs them on the
CPU instead (a dry run of the test code). TF32 is switched off here, so float32 on CUDA is IEEE
float32 and the float32 tolerances below hold.
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch

from semiasr import functional as F
from semiasr.data.batch import Batch
from semiasr.models import ModelConfig, build_model
from semiasr.nn import Joiner
from semiasr.objectives import TransducerObjective
from semiasr.optim import FAdam, OptimConfig, build_optimizer
from semiasr.semiring import joint

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available() and "SEMIASR_TEST_CUDA" not in os.environ,
    reason="no CUDA device here",
)

CUDA = torch.device(os.environ.get("SEMIASR_TEST_CUDA", "cuda"))
F64 = {"rtol": 1e-9, "atol": 1e-9}
F32 = {"rtol": 1e-5, "atol": 1e-5}


@pytest.fixture(autouse=True)
def _no_tf32():
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def _close_rel(got: torch.Tensor, ref: torch.Tensor, tol: float, what: str, floor: float = 0.0):
    """‖got − ref‖ ≤ tol · ‖ref‖ + floor: float32 rounding, amplified where a result divides by
    small numbers (an optimizer's 1/√v) or sums many terms (a deep network's gradients), judged on
    the whole tensor rather than element by element."""
    err, scale = (got.double().cpu() - ref).norm(), ref.norm()
    assert err <= tol * scale + floor, f"{what}: error {float(err):.3g}, norm {float(scale):.3g}"


# ------------------------------------------------------------------- blocked joiner + RNN-T loss


def _joiner_loss_grads(dev, dtype, blank):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    bsz, t_max, u_max, v = 4, 13, 6, 9
    joiner = Joiner(5, 4, 8, v).double()
    enc = torch.randn(bsz, t_max, 5, generator=g, dtype=torch.float64)
    pred = torch.randn(bsz, u_max + 1, 4, generator=g, dtype=torch.float64)
    targets = torch.randint(0, v - 1, (bsz, u_max), generator=g) + (blank == 0)  # never blank
    t_len, u_len = torch.tensor([t_max, 9, 1, 5]), torch.tensor([u_max, 3, 0, 6])
    joiner = joiner.to(dev, dtype)
    enc, pred = (x.to(dev, dtype).requires_grad_(True) for x in (enc, pred))
    loss = F.rnnt_joiner_loss(
        joiner.project_encoder(enc),
        joiner.project_predictor(pred),
        joiner.output.weight,
        joiner.output.bias,
        targets.to(dev),
        t_len.to(dev),
        u_len.to(dev),
        blank,
        reduction="none",
    )
    weights = torch.linspace(0.5, 1.5, bsz, dtype=torch.float64).to(dev, dtype)
    params = [enc, pred, *joiner.parameters()]
    grads = torch.autograd.grad((loss * weights).sum(), params)
    return [x.detach().double().cpu() for x in (loss, *grads)]


@pytest.mark.parametrize("rows", [2048, 5])  # one block per utterance; blocks of one frame
@pytest.mark.parametrize("blank", [0, -1])
def test_rnnt_joiner_loss_on_cuda_equals_cpu_float64(rows, blank, monkeypatch):
    monkeypatch.setattr(joint, "_BLOCK_ROWS", rows)
    ref = _joiner_loss_grads("cpu", torch.float64, blank)
    assert torch.isfinite(ref[0]).all()
    for dtype, tol in ((torch.float64, F64), (torch.float32, F32)):
        got = _joiner_loss_grads(CUDA, dtype, blank)
        for a, b in zip(ref, got, strict=True):
            torch.testing.assert_close(b, a, **tol)


# ------------------------------------------------------------------------------------ optimizers


def _params(seed: int) -> list[torch.Tensor]:
    """A tensor past the CPU's 1M-element foreach chunk, a matrix, a bias, a scalar."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(1100, 1000), (7, 5), (5,), ()]
    return [0.1 * torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]


def _grads(step: int, params: list[torch.Tensor]) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    scale = 10.0 ** (step % 3 - 1)  # the scale jumps so that FAdam's clip engages now and then
    out = [scale * torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
    if step == 0:
        out[2].zero_()  # an all-zero gradient while the Fisher is still zero
    return out


def _run_optimizer(make, dev, dtype, steps=3):
    params = [p.to(dev, dtype).requires_grad_(True) for p in _params(0)]
    opt = make(params)
    for step in range(steps):
        for p, gr in zip(params, _grads(step, params), strict=True):
            p.grad = gr.to(dev, dtype)
        opt.step()
    return opt, [p.detach().double().cpu() for p in params]


@pytest.mark.parametrize("foreach", [True, False])
def test_fadam_on_cuda_equals_cpu_float64(foreach):
    def make(params, foreach_=False):
        return FAdam(params, lr=1e-2, weight_decay=0.1, clip=1.0, foreach=foreach_)

    _, ref = _run_optimizer(make, "cpu", torch.float64)
    for dtype in (torch.float64, torch.float32):
        _, got = _run_optimizer(lambda p: make(p, foreach), CUDA, dtype)
        for i, (a, b) in enumerate(zip(ref, got, strict=True)):
            if dtype == torch.float64:
                torch.testing.assert_close(b, a, **F64)
            else:
                _close_rel(b, a, 1e-5, f"parameter {i}")


@pytest.mark.parametrize("impl", ["auto", "fused", "foreach", "loop"])
def test_build_optimizer_adamw_on_cuda_equals_cpu_float64(impl):
    cfg = OptimConfig(name="adamw", lr=1e-2, weight_decay=0.1, implementation=impl)
    _, ref = _run_optimizer(
        lambda p: build_optimizer(p, OptimConfig(lr=1e-2, weight_decay=0.1, implementation="loop")),
        "cpu",
        torch.float64,
    )
    for dtype in (torch.float64, torch.float32):
        opt, got = _run_optimizer(lambda p: build_optimizer(p, cfg), CUDA, dtype)
        if impl in ("auto", "fused"):
            assert opt.param_groups[0]["fused"]
        for i, (a, b) in enumerate(zip(ref, got, strict=True)):
            if dtype == torch.float64:
                torch.testing.assert_close(b, a, **F64)
            else:
                _close_rel(b, a, 1e-5, f"parameter {i}")


# -------------------------------------------------------------------------- transducer model


def _model_and_batch():
    torch.manual_seed(0)
    cfg = ModelConfig(preset="xs", predictor="lstm", ctc_weight=0.3, dropout=0.0)
    model = build_model(cfg, vocab_size=12, feat_dim=80).double()
    g = torch.Generator().manual_seed(1)
    f_len, t_len = torch.tensor([96, 80, 41]), torch.tensor([7, 5, 2])
    feats = torch.randn(3, 96, 80, generator=g, dtype=torch.float64)
    feats *= (torch.arange(96)[None, :] < f_len[:, None])[..., None]
    toks = torch.randint(1, 12, (3, 7), generator=g) * (torch.arange(7)[None] < t_len[:, None])
    domains = torch.zeros(3, dtype=torch.long)
    return model, Batch(feats, f_len, toks, t_len, [""] * 3, domains, ["a", "b", "c"])


def _loss_and_grads(model, batch):
    model.train()
    model.zero_grad(set_to_none=True)
    loss, metrics = TransducerObjective()(model, batch)
    loss.backward()
    grads = {n: p.grad.detach().double().cpu() for n, p in model.named_parameters()}
    return float(loss.detach()), metrics, grads


def test_transducer_training_step_on_cuda_equals_cpu_float64():
    """The objective's loss and every parameter gradient. On the CPU the RNN-T term comes from the
    blocked joiner pass, on CUDA from the materialised logits: the two paths agree as well."""
    model, batch = _model_and_batch()
    ref_loss, ref_metrics, ref_grads = _loss_and_grads(model, batch)
    for dtype in (torch.float64, torch.float32):
        on_dev = replace(batch.to(CUDA), features=batch.features.to(CUDA, dtype))
        loss, metrics, grads = _loss_and_grads(model.to(CUDA, dtype), on_dev)
        if dtype == torch.float64:
            assert loss == pytest.approx(ref_loss, rel=1e-9)
            assert metrics["ctc_loss"] == pytest.approx(ref_metrics["ctc_loss"], rel=1e-9)
            for name, ref in ref_grads.items():
                torch.testing.assert_close(
                    grads[name], ref, **F64, msg=lambda m, n=name: f"{n}: {m}"
                )
        else:
            assert loss == pytest.approx(ref_loss, rel=1e-5)
            total = torch.cat([g.flatten() for g in ref_grads.values()]).norm()
            for name, ref in ref_grads.items():  # the floor: key biases have zero gradient
                _close_rel(grads[name], ref, 1e-4, name, floor=1e-6 * float(total))
    model.to("cpu", torch.float64)


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_transducer_search_on_cuda_gives_the_cpu_tokens(method):
    model, batch = _model_and_batch()
    model.eval()
    ref = model.transcribe(batch.features, batch.feature_lengths, method=method, beam=4)
    assert sum(map(len, ref)) > 0
    model.to(CUDA)
    got = model.transcribe(batch.features.to(CUDA), batch.feature_lengths.to(CUDA), method, 4)
    assert got == ref
