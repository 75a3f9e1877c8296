"""FAdam against Adam's second moment, a plain per-tensor float64 reference, and its invariants."""

from __future__ import annotations

import copy
import datetime
import gc
import io
import math

import pytest
import torch

from semiasr.errors import ConfigError
from semiasr.optim import FAdam

SHAPES = [(7, 5), (11,), (3, 4, 2), (1,), (64, 33)]
BOTH = pytest.mark.parametrize("foreach", [True, False], ids=["foreach", "per_tensor"])


def make_params(seed: int, dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in SHAPES]


def random_grads(params: list[torch.Tensor], gen: torch.Generator) -> list[torch.Tensor]:
    """Gradients whose scale jumps between steps, so that the clip engages now and then."""
    scale = 10.0 ** torch.empty(()).uniform_(-3, 1, generator=gen).item()
    return [scale * torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]


def set_grads(params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
    for p, g in zip(params, grads):
        p.grad = g.clone()


def rms(x: torch.Tensor) -> float:
    return (x.double().pow(2).mean().sqrt()).item()


# ------------------------------------------------- the plain reference of ALGORITHMS.md §7


class ReferenceFAdam:
    """Per-tensor FAdam in float64, from the paper's update with Adam's bias-corrected v as f."""

    def __init__(self, params, lr, betas, eps, weight_decay, clip, p):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.wd, self.clip, self.p = weight_decay, clip, p
        self.v = [torch.zeros_like(x) for x in params]
        self.m = [torch.zeros_like(x) for x in params]
        self.t = 0

    def step(self, grads):
        b1, b2 = self.betas
        self.t += 1
        for i, (theta, g) in enumerate(zip(self.params, grads)):
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            f = self.v[i] / (1 - b2**self.t)
            eps_t = self.eps * min(rms(g), 1.0)
            nat = g / (f**self.p + eps_t)
            nat = nat / max(1.0, rms(nat) / self.clip)
            self.m[i] = b1 * self.m[i] + (1 - b1) * nat
            w = theta / (f**self.p + eps_t)
            w = w / max(1.0, rms(w) / self.clip)
            theta -= self.lr * (self.m[i] + self.wd * w)


def quadratic_grads(params, targets, curv, noise):
    """g = curv ⊙ (θ − target) + noise: a random elementwise quadratic problem."""
    return [c * (p.detach() - t) + n for p, t, c, n in zip(params, targets, curv, noise)]


@BOTH
@pytest.mark.parametrize(
    "hp",
    [
        dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, clip=1.0, p=0.5),
        dict(lr=3e-3, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.0, clip=0.3, p=0.5),
        dict(lr=1e-2, betas=(0.0, 0.99), eps=1e-6, weight_decay=0.5, clip=2.0, p=0.3),
    ],
    ids=["defaults", "tight_clip", "p_0.3"],
)
def test_fadam_matches_plain_reference_for_100_steps(foreach, hp):
    gen = torch.Generator().manual_seed(1)
    params = make_params(0)
    ref_params = [p.detach().clone() for p in params]
    targets = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
    curv = [torch.rand(p.shape, generator=gen, dtype=p.dtype) * 5 for p in params]
    opt = FAdam(params, foreach=foreach, **hp)
    ref = ReferenceFAdam(ref_params, **hp)
    for _ in range(100):
        noise = random_grads(params, gen)
        set_grads(params, quadratic_grads(params, targets, curv, noise))
        opt.step()
        ref.step(quadratic_grads(ref_params, targets, curv, noise))
    for p, r, init in zip(params, ref_params, make_params(0)):
        torch.testing.assert_close(p.detach(), r, rtol=1e-6, atol=1e-6)
        assert (p.detach() - init).abs().max() > 1e-2  # it moved


@BOTH
def test_fisher_equals_adams_bias_corrected_second_moment(foreach):
    gen = torch.Generator().manual_seed(2)
    params = make_params(0)
    adam_params = make_params(0)
    beta2 = 0.95
    fadam = FAdam(params, betas=(0.9, beta2), foreach=foreach)
    adam = torch.optim.Adam(adam_params, betas=(0.9, beta2))
    for t in range(1, 41):
        grads = random_grads(params, gen)
        set_grads(params, grads)
        set_grads(adam_params, grads)
        fadam.step()
        adam.step()
        for p, q in zip(params, adam_params):
            v_hat = adam.state[q]["exp_avg_sq"] / (1 - beta2**t)
            torch.testing.assert_close(fadam.state[p]["fisher"], v_hat, rtol=1e-10, atol=0)
            assert fadam.state[p]["step"] == t


@BOTH
def test_first_step_is_minus_lr_times_sign_of_gradient(foreach):
    gen = torch.Generator().manual_seed(3)
    params = make_params(0)
    before = [p.detach().clone() for p in params]
    grads = [torch.randn(p.shape, generator=gen, dtype=p.dtype) * 1e-2 for p in params]
    set_grads(params, grads)
    lr = 0.05
    opt = FAdam(params, lr=lr, betas=(0.0, 0.999), eps=0.0, weight_decay=0.0, clip=math.inf)
    opt.param_groups[0]["foreach"] = foreach
    opt.step()
    for p, b, g in zip(params, before, grads):
        torch.testing.assert_close(p.detach(), b - lr * g.sign(), rtol=0, atol=1e-12)


@BOTH
@pytest.mark.parametrize("clip", [0.5, 1.0])
def test_every_step_respects_the_clip_bound(foreach, clip):
    """β₁ = 0, λ = 0: the step is −η·clip(ḡ), whose RMS is ≤ c; the clip must actually engage."""
    gen = torch.Generator().manual_seed(4)
    params = make_params(0)
    lr = 1e-3
    opt = FAdam(params, lr=lr, betas=(0.0, 0.999), weight_decay=0.0, clip=clip, foreach=foreach)
    engaged = 0
    for _ in range(60):
        before = [p.detach().clone() for p in params]
        grads = random_grads(params, gen)
        f_old = [opt.state[p]["fisher"].clone() if opt.state[p] else None for p in params]
        set_grads(params, grads)
        opt.step()
        for p, b, g, fo in zip(params, before, grads, f_old):
            step_rms = rms((b - p.detach()) / lr)
            assert step_rms <= clip * (1 + 1e-9)
            unclipped = g / (opt.state[p]["fisher"].sqrt() + 1e-8 * min(rms(g), 1.0))
            engaged += fo is not None and rms(unclipped) > clip * 1.01
    assert engaged > 10


@BOTH
def test_step_with_momentum_and_decay_is_bounded_by_clip_times_one_plus_lambda(foreach):
    gen = torch.Generator().manual_seed(5)
    params = make_params(0)
    lr, wd, clip = 1e-3, 0.3, 1.0
    opt = FAdam(params, lr=lr, weight_decay=wd, clip=clip, foreach=foreach)
    for _ in range(30):
        before = [p.detach().clone() for p in params]
        set_grads(params, random_grads(params, gen))
        opt.step()
        for p, b in zip(params, before):
            assert rms((b - p.detach()) / lr) <= clip * (1 + wd) * (1 + 1e-9)


def train(opt, params, gen, steps):
    for _ in range(steps):
        set_grads(params, random_grads(params, gen))
        opt.step()


def two_groups(params, foreach):
    return FAdam(
        [
            {"params": params[:2], "weight_decay": 0.0, "lr": 3e-3},
            {"params": params[2:], "clip": 0.5, "betas": (0.8, 0.99)},
        ],
        lr=1e-2,
        foreach=foreach,
    )


@BOTH
def test_state_dict_round_trip_resumes_exactly(foreach):
    params = make_params(0, torch.float32)
    opt = two_groups(params, foreach)
    train(opt, params, torch.Generator().manual_seed(6), 7)
    saved_params = [p.detach().clone() for p in params]
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    gen_state = torch.Generator().manual_seed(7).get_state()

    train(opt, params, torch.Generator().set_state(gen_state), 9)  # uninterrupted

    resumed = [p.clone().requires_grad_() for p in saved_params]
    opt2 = two_groups(resumed, foreach)
    buf.seek(0)
    opt2.load_state_dict(torch.load(buf))
    train(opt2, resumed, torch.Generator().set_state(gen_state), 9)
    for p, q in zip(params, resumed):
        assert torch.equal(p, q)
    for p, q in zip(params, resumed):
        assert opt.state[p]["step"] == opt2.state[q]["step"] == 16
        assert torch.equal(opt.state[p]["momentum"], opt2.state[q]["momentum"])
        assert torch.equal(opt.state[p]["fisher"], opt2.state[q]["fisher"])


def test_foreach_and_per_tensor_paths_agree_with_mixed_dtypes_and_missing_grads():
    gen = torch.Generator().manual_seed(8)
    a = make_params(0) + make_params(1, torch.float32)
    b = [p.detach().clone().requires_grad_() for p in a]
    opt_a, opt_b = FAdam(a, foreach=True), FAdam(b, foreach=False)
    for step in range(20):
        grads = random_grads(a, gen)
        set_grads(a, grads)
        set_grads(b, grads)
        if step % 3 == 0:  # a parameter without gradient is skipped, its step count lags
            a[1].grad = b[1].grad = None
        opt_a.step()
        opt_b.step()
    for p, q in zip(a, b):
        tol = 1e-12 if p.dtype == torch.float64 else 1e-5
        torch.testing.assert_close(p, q, rtol=tol, atol=tol)
    assert opt_a.state[a[1]]["step"] == opt_b.state[b[1]]["step"] == 13


@BOTH
def test_all_zero_gradient_on_a_fresh_tensor_stays_finite(foreach):
    params = make_params(0)
    set_grads(params, [torch.zeros_like(p) for p in params])
    opt = FAdam(params, foreach=foreach)
    before = [p.detach().clone() for p in params]
    opt.step()
    for p, b in zip(params, before):
        assert torch.isfinite(p).all()
        assert rms((b - p.detach()) / 1e-3) <= 0.1 * 1.0 * (1 + 1e-9)  # only λ·clip(w)
        assert torch.equal(opt.state[p]["momentum"], torch.zeros_like(p))


def test_bfloat16_parameters_are_updated_finitely_by_both_paths():
    gen = torch.Generator().manual_seed(9)
    a = make_params(0, torch.bfloat16)
    b = [p.detach().clone().requires_grad_() for p in a]
    opt_a, opt_b = FAdam(a, foreach=True), FAdam(b, foreach=False)
    for _ in range(5):
        grads = random_grads(a, gen)
        set_grads(a, grads)
        set_grads(b, grads)
        opt_a.step()
        opt_b.step()
    for p, q in zip(a, b):
        assert torch.isfinite(p.float()).all()
        torch.testing.assert_close(p, q, rtol=2e-2, atol=2e-2)


def make_model(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


def loss_of(model, x, y):
    return torch.nn.functional.mse_loss(model(x), y)


@BOTH
def test_grad_scaler_matches_unscaled_training_and_skips_inf_steps(foreach):
    x, y = torch.randn(32, 6, generator=torch.Generator().manual_seed(0)), torch.randn(32, 3)
    plain, scaled = make_model(0), make_model(0)
    opt_p = FAdam(plain.parameters(), lr=1e-2, foreach=foreach)
    opt_s = FAdam(scaled.parameters(), lr=1e-2, foreach=foreach)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    for _ in range(10):
        opt_p.zero_grad()
        loss_of(plain, x, y).backward()
        opt_p.step()
        opt_s.zero_grad()
        scaler.scale(loss_of(scaled, x, y)).backward()
        scaler.step(opt_s)
        scaler.update()
    for p, q in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)

    before = [copy.deepcopy(p.detach()) for p in scaled.parameters()]
    state_before = copy.deepcopy(opt_s.state_dict())
    opt_s.zero_grad()
    scaler.scale(loss_of(scaled, x, y)).backward()
    next(scaled.parameters()).grad[0, 0] = math.inf
    scaler.step(opt_s)
    scaler.update()
    assert scaler.get_scale() == 2.0**11
    for p, b in zip(scaled.parameters(), before):
        assert torch.equal(p.detach(), b)
    assert opt_s.state_dict()["state"][0]["step"] == state_before["state"][0]["step"] == 10


def test_works_under_distributed_data_parallel(tmp_path, monkeypatch):
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this build")
    x, y = torch.randn(16, 6), torch.randn(16, 3)
    ref = make_model(0)
    opt_r = FAdam(ref.parameters(), lr=1e-2)
    # the loopback device (no host-name lookup) and a bounded wait: a test, not a 30-minute hang
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group(
        "gloo",
        init_method=f"file://{tmp_path}/store",
        rank=0,
        world_size=1,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(make_model(0))
        opt_d = FAdam(ddp.parameters(), lr=1e-2)
        for _ in range(5):
            for model, opt in ((ref, opt_r), (ddp, opt_d)):
                opt.zero_grad()
                loss_of(model, x, y).backward()
                opt.step()
        trained = ddp.module
    finally:
        # the DDP wrapper (its reducer holds the group's pending work) goes before the group: a
        # CI run hung once in ~ProcessGroupGloo, joining a gloo thread that waited for the GIL
        ddp = opt_d = None
        gc.collect()
        dist.destroy_process_group()
    for p, q in zip(ref.parameters(), trained.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=-1.0),
        dict(betas=(1.0, 0.9)),
        dict(betas=(0.9, -0.1)),
        dict(eps=-1e-8),
        dict(weight_decay=-0.1),
        dict(clip=0.0),
        dict(p=0.0),
    ],
)
def test_bad_hyperparameters_raise_config_error_naming_them(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ConfigError, match=name):
        FAdam(make_params(0), **kwargs)


def test_bad_hyperparameter_in_a_parameter_group_is_rejected():
    params = make_params(0)
    with pytest.raises(ConfigError, match="clip"):
        FAdam([{"params": params[:1]}, {"params": params[1:], "clip": -1.0}])


def test_sparse_gradients_are_rejected():
    emb = torch.nn.Embedding(10, 4, sparse=True)
    emb(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(ConfigError, match="sparse"):
        FAdam(emb.parameters()).step()


def test_cpu_chunking_of_the_multi_tensor_path_changes_nothing(monkeypatch):
    """Chunks of a few tensors (one tensor alone where it exceeds the budget) give the same
    update as one multi-tensor call and as the per-tensor loop."""
    import semiasr.optim.fadam as fadam_module

    gen = torch.Generator().manual_seed(10)
    runs = {}
    for name, budget, foreach in [("whole", 1e12, True), ("chunked", 40, True), ("loop", 0, False)]:
        monkeypatch.setattr(fadam_module, "_CPU_CHUNK_NUMEL", budget)
        params = make_params(0)
        opt = FAdam(params, foreach=foreach)
        train(opt, params, torch.Generator().set_state(gen.get_state()), 10)
        runs[name] = params
    for a, b, c in zip(runs["whole"], runs["chunked"], runs["loop"]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)


def test_chunks_respect_the_budget_and_keep_order():
    from semiasr.optim.fadam import _chunks

    assert _chunks([0, 1, 2, 3, 4], [10, 30, 50, 5, 5], 40) == [[0, 1], [2], [3, 4]]
    assert _chunks([7, 8], [1, 1], math.inf) == [[7, 8]]
