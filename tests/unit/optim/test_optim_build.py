"""build_optimizer: names, hyperparameters from the config, and the weight-decay groups."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from semiasr.config import load_config
from semiasr.errors import ConfigError
from semiasr.optim import FAdam, OptimConfig, build_optimizer, build_scheduler, decay_groups
from semiasr.optim.schedules import make_schedule


def small_model():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Conv1d(8, 8, 3), nn.Embedding(5, 8))
    model[3].weight.requires_grad_(False)
    return model


def test_decay_groups_exclude_biases_norm_weights_and_frozen_parameters():
    model = small_model()
    groups = decay_groups(model, 0.3)
    decay, no_decay = ({id(p) for p in g["params"]} for g in groups)
    assert [g["weight_decay"] for g in groups] == [0.3, 0.0]
    assert decay == {id(model[0].weight), id(model[2].weight)}
    assert no_decay == {
        id(model[0].bias),
        id(model[1].weight),
        id(model[1].bias),
        id(model[2].bias),
    }


@pytest.mark.parametrize(("name", "cls"), [("adamw", torch.optim.AdamW), ("fadam", FAdam)])
def test_build_optimizer_by_name_with_config_hyperparameters(name, cls):
    cfg = OptimConfig(name=name, lr=2e-3, beta1=0.8, beta2=0.95, eps=1e-7, weight_decay=0.2)
    opt = build_optimizer(small_model(), cfg)
    assert type(opt) is cls
    g = opt.param_groups[0]
    assert (g["lr"], tuple(g["betas"]), g["eps"], g["weight_decay"]) == (
        2e-3,
        (0.8, 0.95),
        1e-7,
        0.2,
    )
    assert opt.param_groups[1]["weight_decay"] == 0.0


def test_fadam_from_a_loaded_config_with_overrides():
    cfg = load_config(
        "demo", ["optim.name=fadam", "optim.clip=.inf", "optim.p=0.25", "sched.name=noam"]
    )
    model = small_model()
    opt = build_optimizer(model, cfg.optim)
    assert isinstance(opt, FAdam)
    assert opt.param_groups[0]["clip"] == math.inf
    assert opt.param_groups[0]["p"] == 0.25
    sched = build_scheduler(opt, cfg.sched, cfg.train.max_steps)
    assert opt.param_groups[0]["lr"] == pytest.approx(cfg.optim.lr / cfg.sched.warmup_steps)
    x = torch.randn(3, 4)
    model[1](model[0](x)).sum().backward()
    opt.step()
    sched.step()
    assert opt.param_groups[1]["lr"] == pytest.approx(2 * cfg.optim.lr / cfg.sched.warmup_steps)


def test_plain_parameter_list_is_used_as_given():
    params = [torch.zeros(3, requires_grad=True)]
    opt = build_optimizer(params, OptimConfig(name="fadam", weight_decay=0.5))
    assert opt.param_groups[0]["weight_decay"] == 0.5


def test_unknown_optimizer_name_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'fadam'") as err:
        build_optimizer(small_model(), OptimConfig(name="fadm"))
    assert err.value.key == "optim.name"


def test_model_without_trainable_parameters_is_an_error():
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        build_optimizer(model, OptimConfig())


def test_lr_scales_split_groups_first_glob_wins_and_the_schedule_scales_all():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    cfg = load_config(
        None,
        [
            "optim.lr=0.002",
            "optim.weight_decay=0.1",
            "optim.lr_scales={'2': 5.0, '*': 0.5}",
            "sched.name=cosine",
            "sched.warmup_steps=0",
        ],
    )
    opt = build_optimizer(model, cfg.optim)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert lr_of[id(model[2].weight)] == lr_of[id(model[2].bias)] == pytest.approx(0.01)
    assert lr_of[id(model[0].weight)] == lr_of[id(model[1].bias)] == pytest.approx(0.001)
    assert wd_of[id(model[2].weight)] == 0.1 and wd_of[id(model[2].bias)] == 0.0
    assert len(opt.param_groups) == 4
    sched = build_scheduler(opt, cfg.sched, 10)
    for _ in range(5):
        opt.step()
        sched.step()
    want = make_schedule(cfg.sched, 10)(5)
    assert all(math.isclose(g["lr"] / g["initial_lr"], want) for g in opt.param_groups)
    # the trainer logs the base rate: group 0's divided by its factor
    assert all(
        math.isclose(g["lr"] / g.get("lr_scale", 1.0), 0.002 * want) for g in opt.param_groups
    )


def test_lr_scales_refuse_a_glob_that_selects_nothing():
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
    with pytest.raises(ConfigError, match="select no trainable parameter"):
        build_optimizer(model, OptimConfig(lr_scales={"adapters": 3.0}))
    with pytest.raises(ConfigError, match="select no trainable parameter"):
        build_optimizer(model, OptimConfig(lr_scales={"*": 2.0, "1": 3.0}))
    with pytest.raises(ConfigError, match="needs a model"):
        build_optimizer(model.parameters(), OptimConfig(lr_scales={"1": 2.0}))
    with pytest.raises(ConfigError, match="must be > 0"):
        build_optimizer(model, OptimConfig(lr_scales={"1": 0.0}))


def test_lr_scales_override_replaces_the_mapping():
    """A later `optim.lr_scales={...}` replaces the earlier mapping (a merge could only add keys, so
    an adaptation could never drop the factors its base run used)."""
    cfg = load_config(None, ["optim.lr_scales={encoder: 0.5, joiner: 2}", "optim.lr_scales={b: 3}"])
    assert dict(cfg.optim.lr_scales) == {"b": 3.0}
    assert (
        dict(load_config(None, ["optim.lr_scales={a: 2}", "optim.lr_scales={}"]).optim.lr_scales)
        == {}
    )


@pytest.mark.parametrize(
    ("impl", "flags"),
    [
        ("auto", {"fused": True, "foreach": None}),
        ("fused", {"fused": True, "foreach": None}),
        ("foreach", {"fused": None, "foreach": True}),
        ("loop", {"fused": None, "foreach": False}),
    ],
)
def test_adamw_implementation_flags(impl, flags):
    opt = build_optimizer(small_model(), OptimConfig(implementation=impl))
    got = {k: opt.param_groups[0][k] for k in flags}
    assert got == flags


def test_fused_adamw_matches_the_loop_to_rounding():
    """Twenty updates of a small network with weight decay and both groups: the fused kernel and
    the per-parameter loop agree to 1e-6 (they round differently, so not bit for bit)."""
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(16, 32), nn.LayerNorm(32), nn.Tanh(), nn.Linear(32, 4))
    x, y = torch.randn(64, 16), torch.randn(64, 4)
    finals = {}
    for impl in ("loop", "fused"):
        model = copy.deepcopy(base)
        opt = build_optimizer(model, OptimConfig(lr=1e-2, weight_decay=0.1, implementation=impl))
        for _ in range(20):
            opt.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        finals[impl] = torch.cat([p.detach().flatten() for p in model.parameters()])
    moved = (finals["loop"] - torch.cat([p.flatten() for p in base.parameters()])).abs().max()
    assert moved > 1e-2  # the updates did something
    torch.testing.assert_close(finals["fused"], finals["loop"], rtol=0, atol=1e-6)


def test_adamw_implementation_errors():
    with pytest.raises(ConfigError, match=r"optim\.implementation: unknown 'fast'"):
        build_optimizer(small_model(), OptimConfig(implementation="fast"))
    model = nn.Linear(3, 3).to(torch.float64)
    assert build_optimizer(model, OptimConfig(implementation="fused")).param_groups[0]["fused"]
    q = nn.Parameter(torch.zeros(3, dtype=torch.complex64))
    with pytest.raises(ConfigError, match=r"no fused AdamW for a torch\.complex64"):
        build_optimizer([q], OptimConfig(implementation="fused"))
    with pytest.raises(ConfigError, match="chooses AdamW's kernel; FAdam has one"):
        build_optimizer(small_model(), OptimConfig(name="fadam", implementation="loop"))
    # auto falls back to PyTorch's default where a parameter has no fused kernel
    assert not build_optimizer([q], OptimConfig()).param_groups[0]["fused"]


def test_a_resumed_optimizer_keeps_the_saved_implementation():
    """Loading a state saved by the loop into a fused optimizer restores the loop (so a run started
    before ``optim.implementation`` existed resumes bit for bit), and vice versa."""
    model = small_model()
    for saved, fresh, expect in (("loop", "auto", None), ("fused", "loop", True)):
        state = build_optimizer(model, OptimConfig(implementation=saved)).state_dict()
        opt = build_optimizer(model, OptimConfig(implementation=fresh))
        opt.load_state_dict(state)
        assert opt.param_groups[0]["fused"] is expect
