"""Learning-rate schedules: factor values at key steps, and the LambdaLR built from a config."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from semiasr.errors import ConfigError
from semiasr.optim import (
    ConstantSchedule,
    CosineSchedule,
    NoamSchedule,
    SchedConfig,
    build_scheduler,
    make_schedule,
)


def test_noam_warms_up_linearly_then_decays_as_inverse_square_root():
    f = NoamSchedule(warmup_steps=4)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(15) == pytest.approx(0.5)  # √(4/16)
    assert f(399) == pytest.approx(0.1)  # √(4/400)
    assert NoamSchedule(4, min_lr_ratio=0.2)(399) == pytest.approx(0.2)


def test_noam_without_warmup_starts_at_one():
    f = NoamSchedule(warmup_steps=0)
    assert f(0) == 1.0
    assert f(3) == pytest.approx(0.5)


def test_cosine_reaches_one_after_warmup_half_at_midpoint_and_the_floor_at_the_end():
    f = CosineSchedule(warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert f(0) == pytest.approx(0.1)
    assert f(4) == pytest.approx(0.5)
    assert f(9) == 1.0
    assert f(59) == pytest.approx(0.55)  # r + (1 − r)/2
    assert f(34) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert f(109) == pytest.approx(0.1)
    assert f(500) == pytest.approx(0.1)


def test_cosine_without_warmup():
    f = CosineSchedule(warmup_steps=0, max_steps=11)
    assert f(0) == 1.0
    assert f(5) == pytest.approx(0.5)
    assert f(10) == pytest.approx(0.0, abs=1e-15)


def test_constant_with_and_without_warmup():
    assert [ConstantSchedule(3)(s) for s in range(5)] == pytest.approx([1 / 3, 2 / 3, 1, 1, 1])
    assert ConstantSchedule(0)(0) == 1.0


def lrs_seen_by_updates(sched_cfg, max_steps, n):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    sched = build_scheduler(opt, sched_cfg, max_steps)
    seen = []
    for _ in range(n):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return seen, sched


def test_build_scheduler_scales_the_base_lr_per_update():
    seen, _ = lrs_seen_by_updates(SchedConfig(name="noam", warmup_steps=4), 100, 16)
    assert seen[0] == pytest.approx(0.5)
    assert seen[3] == pytest.approx(2.0)
    assert seen[15] == pytest.approx(1.0)


def test_scheduler_state_round_trips_and_pickles():
    _, sched = lrs_seen_by_updates(SchedConfig(name="cosine", warmup_steps=2), 20, 7)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    other = build_scheduler(opt, SchedConfig(name="cosine", warmup_steps=2), 20)
    other.load_state_dict(sched.state_dict())
    assert other.last_epoch == 7
    assert other.get_last_lr() == pytest.approx(sched.get_last_lr())
    f = pickle.loads(pickle.dumps(make_schedule(SchedConfig(name="cosine"), 1000)))
    assert f(499) == 1.0


@pytest.mark.parametrize(
    ("cfg", "max_steps", "key"),
    [
        (SchedConfig(name="noma"), 100, "sched.name"),
        (SchedConfig(name="cosine", warmup_steps=100), 100, "sched.warmup_steps"),
        (SchedConfig(warmup_steps=-1), 100, "sched.warmup_steps"),
        (SchedConfig(min_lr_ratio=1.5), 100, "sched.min_lr_ratio"),
    ],
)
def test_bad_schedule_configs_raise_config_error(cfg, max_steps, key):
    with pytest.raises(ConfigError) as err:
        make_schedule(cfg, max_steps)
    assert err.value.key == key


def test_unknown_schedule_suggests_the_closest_name():
    with pytest.raises(ConfigError, match="did you mean 'noam'"):
        make_schedule(SchedConfig(name="noma"), 10)
