"""The trainer's update, accumulation, NaN guard, metrics, SIGINT and in-process resume (CPU)."""

from __future__ import annotations

import json
import math
import os
import signal
import time

import pytest
import torch

from semiasr.errors import ConfigError, DataError
from semiasr.train import NonFiniteLossError, TrainConfig, set_seed


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _sgd_args(toy_args, **kw):
    toy_args.optim, toy_args.dropout, toy_args.augment, toy_args.lr = "sgd", 0.0, False, 0.2
    toy_args.grad_clip, toy_args.items = 0.3, 32
    for k, v in kw.items():
        setattr(toy_args, k, v)
    return toy_args


@pytest.mark.parametrize("clip", [0.0, 0.3], ids=["no-clip", "clip"])
def test_update_with_accumulation_equals_a_hand_written_loop(toy, toy_args, make_trainer, clip):
    """accum 2 × 4 utterances == a hand-written SGD + clip + schedule update on 8 (float64)."""
    args = _sgd_args(toy_args, batch_size=4, accum=2, max_steps=5, ckpt_every=0, grad_clip=clip)
    trainer, model, _ = make_trainer(args)
    initial = _params(model)
    summary = trainer.fit()
    assert summary.steps == 5 and summary.bad_steps == 0

    ref_args = _sgd_args(toy.parser().parse_args([]), batch_size=8, max_steps=5, grad_clip=clip)
    ref, opt, sched, loader = toy.build(ref_args)
    ref.double()
    step, epoch = 0, 0
    while step < 5:
        loader.set_epoch(epoch)
        for batch in loader:
            batch.features = batch.features.double()
            loss, _ = toy.toy_objective(ref, batch)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(ref.parameters(), clip)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step == 5:
                break
        epoch += 1
    ref_state = {k: v.float() for k, v in ref.state_dict().items()}
    assert _max_diff(_params(model), ref_state) < 1e-6
    assert _max_diff(initial, ref_state) > 1e-2  # training moved the weights


def test_nan_steps_are_skipped_and_counted(make_trainer, toy_args, tmp_path):
    toy_args.max_steps, toy_args.ckpt_every = 6, 0
    trainer, model, _ = make_trainer(toy_args, nan_batches={2, 3})
    summary = trainer.fit()
    assert summary.steps == 6 and summary.bad_steps == 2
    assert trainer.scheduler.last_epoch == 6  # the scheduler stepped only on the 6 good updates
    state = trainer.optimizer.state_dict()["state"]
    assert all(int(s["step"]) == 6 for s in state.values())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[-1]["bad_steps"] == 2
    assert "skipped an update" in (tmp_path / "run" / "log.txt").read_text()


def test_too_many_consecutive_bad_steps_stop_training(make_trainer, toy_args):
    toy_args.max_steps, toy_args.ckpt_every = 20, 0
    trainer, model, _ = make_trainer(toy_args, nan_batches=set(range(1, 100)), max_bad_steps=3)
    with pytest.raises(NonFiniteLossError, match="3 consecutive"):
        trainer.fit()
    assert trainer.step == 1 and trainer.bad_total == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_total_bad_step_limit(make_trainer, toy_args):
    toy_args.max_steps, toy_args.ckpt_every = 20, 0
    trainer, _, _ = make_trainer(
        toy_args, nan_batches={1, 3, 5}, max_bad_steps=5, max_bad_steps_total=3
    )
    with pytest.raises(NonFiniteLossError, match="3 total"):
        trainer.fit()
    assert trainer.bad_consecutive == 1 and trainer.step == 3


def test_metrics_have_loss_lr_and_audio_throughput(make_trainer, toy_args, tmp_path):
    toy_args.max_steps, toy_args.ckpt_every = 4, 0
    trainer, _, _ = make_trainer(toy_args, log_every=2)
    trainer.fit()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    for r in rows:
        assert r["split"] == "train" and math.isfinite(r["loss"]) and 0 <= r["acc"] <= 1
        assert r["audio_s_per_s"] > 0 and r["lr"] > 0 and r["grad_norm"] > 0
    assert rows[0]["lr"] == pytest.approx(0.05 * 0.75)  # LambdaLR (s+1)/4 after 2 updates


@pytest.mark.skipif(
    not torch.set_flush_denormal(False), reason="this CPU has no flush-to-zero mode"
)
@pytest.mark.parametrize("before", [False, True], ids=["ieee-before", "flushing-before"])
def test_cpu_fit_flushes_subnormals_while_training_and_restores_the_mode(
    make_trainer, toy_args, toy, before
):
    """Flush-to-zero (a CPU training speed-up) is on inside fit only: a user's process gets back
    the mode it had, IEEE subnormals or its own flushing (the Trainer used to leave it on)."""
    from semiasr.train.runtime import flush_denormal_enabled

    seen = []

    def objective(model, batch):
        seen.append(flush_denormal_enabled())
        return toy.toy_objective(model, batch)

    toy_args.max_steps, toy_args.ckpt_every = 2, 0
    torch.set_flush_denormal(before)
    trainer, _, _ = make_trainer(toy_args, objective=objective)
    assert flush_denormal_enabled() is before  # building a Trainer changes nothing
    trainer.fit()
    assert seen and all(seen)
    assert flush_denormal_enabled() is before


@pytest.mark.parametrize("accum", [1, 2])
def test_metrics_split_time_between_loader_and_compute(
    make_trainer, toy_args, toy, tmp_path, accum
):
    """A loader that sleeps 40 ms per batch shows in ``data_s``; an objective that sleeps 25 ms
    shows in ``compute_s`` (per update: ``accum`` batches), and neither leaks into the other, nor
    do evaluation and checkpoints (a 60 ms evaluation and a checkpoint after every update)."""
    toy_args.max_steps, toy_args.ckpt_every, toy_args.accum = 4, 1, accum

    def slow_objective(model, batch):
        time.sleep(0.025)
        return toy.toy_objective(model, batch)

    def slow_evaluate(model):
        time.sleep(0.06)
        return {"loss": 0.0}

    trainer, _, loader = make_trainer(
        toy_args, objective=slow_objective, evaluate=slow_evaluate, log_every=2, eval_every=1
    )
    iterate = type(loader).__iter__

    def slow_iter(self):
        for batch in iterate(self):
            time.sleep(0.04)
            yield batch

    loader.__class__ = type("SlowLoader", (type(loader),), {"__iter__": slow_iter})
    trainer.fit()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [r for r in map(json.loads, lines) if r["split"] == "train"]
    assert len(rows) == 2
    for r in rows:
        # either sleep leaking into the other figure, or the evaluation into either, would add
        # 25 ms or more
        assert 0.04 * accum <= r["data_s"] < 0.04 * accum + 0.025
        assert 0.025 * accum <= r["compute_s"] < 0.025 * accum + 0.025


def test_sigint_saves_a_checkpoint_and_returns(make_trainer, toy_args, toy):
    calls = {"n": 0}

    def objective(model, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return toy.toy_objective(model, batch)

    before = signal.getsignal(signal.SIGINT)
    toy_args.max_steps, toy_args.ckpt_every = 50, 0
    trainer, _, _ = make_trainer(toy_args, objective=objective)
    summary = trainer.fit()
    assert summary.interrupted and 3 <= summary.steps <= 4
    assert summary.last_checkpoint and summary.last_checkpoint.endswith(f"step-{summary.steps}.pt")
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("stateful", [True, False], ids=["loader-state", "fast-forward"])
@pytest.mark.parametrize(
    ("signal_at", "stop_step"), [(9, 5), (13, 7)], ids=["mid-epoch", "epoch-end"]
)
def test_resume_after_interrupt_matches_an_uninterrupted_run(
    make_trainer, toy, toy_args, stateful, signal_at, stop_step
):
    """Dropout, shuffling, NumPy/Python augmentation and Adam all continue exactly (in-process).

    7 batches per epoch, 2 per update: a signal while drawing the 9th batch stops after update 5
    (epoch 1, 4 batches drawn); one at the 13th stops after update 7, on the last batch of epoch
    1."""
    toy_args.max_steps, toy_args.ckpt_every, toy_args.accum = 9, 0, 2
    full, full_model, _ = make_trainer(toy_args, name="full", stateful=stateful)
    full.fit()

    calls = {"n": 0}

    def objective(model, batch):
        calls["n"] += 1
        if calls["n"] == signal_at:
            os.kill(os.getpid(), signal.SIGINT)
        return toy.toy_objective(model, batch)

    first, _, _ = make_trainer(toy_args, name="cut", stateful=stateful, objective=objective)
    assert first.fit().interrupted and first.step == stop_step
    set_seed(999)  # the resumed process starts from other random states; the checkpoint restores
    again, model, _ = make_trainer(toy_args, name="cut", resume=True, stateful=stateful)
    summary = again.fit()
    assert summary.resumed_from and summary.resumed_from.endswith(f"step-{stop_step}.pt")
    assert summary.steps == 9
    assert _max_diff(_params(model), _params(full_model)) < 1e-6


def test_a_run_stopped_by_max_epochs_resumes_into_the_next_epoch(make_trainer, toy_args):
    """7 batches per epoch and no step checkpoints: the run that stops after epoch 1 saves at its
    end, after the loop has moved on to epoch 2; resumed with max_epochs=2 it must train epoch 2
    (not skip it) and end where a straight two-epoch run ends."""
    toy_args.ckpt_every, toy_args.max_steps = 0, 100
    full, full_model, _ = make_trainer(toy_args, name="full", max_epochs=2)
    assert full.fit().steps == 14
    first, _, _ = make_trainer(toy_args, name="cut", max_epochs=1)
    assert first.fit().steps == 7
    set_seed(999)
    again, model, _ = make_trainer(toy_args, name="cut", resume=True, max_epochs=2)
    summary = again.fit()
    assert summary.steps == 14 and summary.epochs == 2
    assert _max_diff(_params(model), _params(full_model)) < 1e-6


def test_the_run_s_total_time_adds_up_over_resumes(make_trainer, toy_args, tmp_path):
    """A checkpoint records the training time that led to it; a resumed fit reports its own wall
    time and the run's total (what the demo's report shows)."""
    from semiasr.train import load_checkpoint

    toy_args.max_steps, toy_args.ckpt_every = 2, 1
    first = make_trainer(toy_args, name="t")[0].fit()
    recorded = load_checkpoint(tmp_path / "t" / "checkpoints" / "step-2.pt")["trainer"]
    assert 0 < recorded["train_seconds"] <= first.wall_time_s
    assert first.total_wall_time_s == pytest.approx(first.wall_time_s, abs=1e-3)
    toy_args.max_steps = 4
    again = make_trainer(toy_args, name="t", resume=True)[0].fit()
    assert again.total_wall_time_s == pytest.approx(
        recorded["train_seconds"] + again.wall_time_s, abs=1e-3
    )


def test_each_run_logs_to_its_own_file(make_trainer, toy_args, tmp_path):
    """The log.txt handler of a finished run is closed: a later run in the same process does not
    write into it."""
    import logging

    toy_args.max_steps = 2
    for name in ("first", "second"):
        make_trainer(toy_args, name=name)[0].fit()
    first = (tmp_path / "first" / "log.txt").read_text()
    assert "first" in first and "second" not in first
    assert "second" in (tmp_path / "second" / "log.txt").read_text()
    left = [getattr(h, "baseFilename", "") for h in logging.getLogger("semiasr").handlers]
    assert not [f for f in left if str(tmp_path) in f]


def test_empty_loader_and_bad_config_raise(make_trainer, toy_args):
    toy_args.items = 3  # fewer than one batch of 4
    trainer, _, _ = make_trainer(toy_args)
    with pytest.raises(DataError, match="no batches"):
        trainer.fit()
    with pytest.raises(ConfigError, match=r"train\.accum_steps"):
        make_trainer(toy_args, name="bad", accum_steps=0)
    with pytest.raises(ConfigError, match=r"train\.best_mode"):
        make_trainer(toy_args, name="bad2", best_mode="lowest")


def test_bf16_autocast_runs_on_cpu(make_trainer, toy_args):
    toy_args.max_steps, toy_args.ckpt_every = 2, 0
    trainer, _, _ = make_trainer(toy_args, precision="bf16")
    summary = trainer.fit()
    assert summary.precision == "bf16" and math.isfinite(summary.final_loss)


def test_default_config_is_valid():
    from semiasr.train.trainer import _validate

    _validate(TrainConfig())
