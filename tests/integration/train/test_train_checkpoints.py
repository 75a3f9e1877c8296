"""Checkpoints: keep-last-K, best, averaging, misfit models, and loads that can never run code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semiasr.errors import CheckpointError
from semiasr.train import (
    CheckpointManager,
    average_checkpoints,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)


def _steps(run: Path) -> list[str]:
    return sorted(
        (p.name for p in (run / "checkpoints").glob("step-*.pt")), key=lambda n: int(n[5:-3])
    )


def test_keep_last_best_and_average(make_trainer, toy_args, tmp_path):
    wer = {1: 5.0, 2: 4.0, 3: 2.0, 4: 3.0, 5: 6.0, 6: 7.0}
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    holder: dict = {}

    def evaluate(model):
        step = holder["trainer"].step
        assert not model.training  # evaluated in eval mode
        snapshots[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return {"wer": wer[step], "cer": torch.tensor(wer[step] / 2)}

    toy_args.max_steps = 6
    trainer, model, _ = make_trainer(
        toy_args, evaluate=evaluate, eval_every=1, ckpt_every=1, keep_last=2, average_last=3
    )
    holder["trainer"] = trainer
    summary = trainer.fit()
    run = tmp_path / "run"
    # keep_last=2 but averaging needs the last 3: max(keep_last, average_last) stay
    assert _steps(run) == ["step-4.pt", "step-5.pt", "step-6.pt"]
    assert summary.best_metric == 2.0 and summary.best_step == 3
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["step"] == 3
    for k, v in snapshots[3].items():
        assert torch.equal(best["model"][k], v)
    assert model.training  # back in train mode after evaluation
    averaged = load_checkpoint(run / "checkpoints" / "averaged.pt")
    assert averaged["averaged_from"] == ["step-4.pt", "step-5.pt", "step-6.pt"]
    for k in snapshots[4]:
        ref = sum(snapshots[s][k].double() for s in (4, 5, 6)) / 3
        assert torch.allclose(averaged["model"][k].double(), ref, atol=1e-6, rtol=0)
    assert summary.averaged_checkpoint.endswith("averaged.pt")
    eval_rows = [
        line for line in (run / "metrics.jsonl").read_text().splitlines() if '"eval"' in line
    ]
    assert len(eval_rows) == 6 and '"cer": 1.0' in eval_rows[2]


def test_an_average_of_older_steps_is_removed_when_training_goes_on(
    make_trainer, toy_args, tmp_path
):
    """Resumed with averaging off, the run's averaged.pt would stand for steps 3–4 after the run
    reached 6 (and `--checkpoint averaged` would silently decode it): it is removed."""
    toy_args.max_steps = 4
    make_trainer(toy_args, ckpt_every=1, average_last=2)[0].fit()
    averaged = tmp_path / "run" / "checkpoints" / "averaged.pt"
    assert averaged.is_file()
    toy_args.max_steps = 4  # resumed with nothing left to train: the average still holds
    make_trainer(toy_args, resume=True, ckpt_every=1, average_last=0)[0].fit()
    assert averaged.is_file()
    toy_args.max_steps = 6
    summary = make_trainer(toy_args, resume=True, ckpt_every=1, average_last=0)[0].fit()
    assert summary.steps == 6 and summary.averaged_checkpoint is None
    assert not averaged.exists()


def test_best_mode_max(make_trainer, toy_args):
    acc = {1: 0.1, 2: 0.9, 3: 0.5}
    holder: dict = {}
    toy_args.max_steps = 3
    trainer, _, _ = make_trainer(
        toy_args,
        evaluate=lambda m: {"acc": acc[holder["t"].step]},
        eval_every=1,
        best_metric="acc",
        best_mode="max",
    )
    holder["t"] = trainer
    summary = trainer.fit()
    assert (summary.best_metric, summary.best_step) == (0.9, 2)


def test_average_checkpoints_is_the_elementwise_mean(tmp_path):
    paths = []
    states = []
    for i in range(3):
        s = {
            "w": torch.randn(3, 4, dtype=torch.float32),
            "h": torch.randn(5).half(),
            "count": torch.tensor(i * 10),
        }
        states.append(s)
        paths.append(tmp_path / f"step-{i}.pt")
        save_checkpoint(paths[-1], {"format": "x", "model": s})
    avg = average_checkpoints(paths)
    ref = (states[0]["w"].double() + states[1]["w"].double() + states[2]["w"].double()) / 3
    assert torch.allclose(avg["w"].double(), ref, atol=1e-6, rtol=0)
    assert avg["h"].dtype == torch.float16
    assert torch.allclose(avg["h"].float(), sum(s["h"].float() for s in states) / 3, atol=1e-3)
    assert int(avg["count"]) == 20  # integer buffers come from the last checkpoint
    save_checkpoint(tmp_path / "other.pt", {"model": {"w": torch.zeros(3, 4)}})
    with pytest.raises(CheckpointError, match="keys differ"):
        average_checkpoints([paths[0], tmp_path / "other.pt"])
    with pytest.raises(CheckpointError, match="at least one"):
        average_checkpoints([])


def test_manager_prunes_oldest_and_removes_temporaries(tmp_path):
    m = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2, 10, 3):
        m.write_step(step, b"x")
    assert [s for s, _ in m.steps()] == [3, 10]
    assert m.latest() == tmp_path / "step-10.pt"
    (tmp_path / ".step-11.pt.abc.tmp").write_bytes(b"half")
    assert [p.name for p in m.remove_temporaries()] == [".step-11.pt.abc.tmp"]


def test_checkpoint_that_does_not_fit_raises(make_trainer, toy, toy_args, tmp_path):
    toy_args.max_steps, toy_args.ckpt_every = 2, 2
    trainer, model, _ = make_trainer(toy_args)
    trainer.fit()
    path = tmp_path / "run" / "checkpoints" / "step-2.pt"
    wider = toy.ToyModel(hidden=32)
    with pytest.raises(CheckpointError, match=r"shape mismatches: inp\.weight \(16, 6\) vs model"):
        load_model_state(wider, load_checkpoint(path)["model"], source=str(path))

    class Extra(toy.ToyModel):
        def __init__(self):
            super().__init__()
            self.adapter = torch.nn.Linear(2, 2)

    with pytest.raises(CheckpointError, match=r"missing keys: adapter\.weight, adapter\.bias"):
        load_model_state(Extra(), load_checkpoint(path)["model"])
    with pytest.raises(CheckpointError, match=r"unexpected keys: out\.weight"):
        small = torch.nn.Module()
        small.inp = torch.nn.Linear(6, 16)
        load_model_state(small, load_checkpoint(path)["model"])
    # the trainer's resume refuses it too, before touching the optimizer
    args = toy.parser().parse_args([])
    wide_trainer, _, _ = make_trainer(args, name="wide")
    wide_trainer.model = toy.ToyModel(hidden=32)
    with pytest.raises(CheckpointError, match="does not fit the model ToyModel"):
        wide_trainer.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not a semiasr trainer checkpoint"):
        save_checkpoint(tmp_path / "bare.pt", {"model": model.state_dict()})
        wide_trainer.load_checkpoint(tmp_path / "bare.pt")


def test_unreadable_checkpoints_raise(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    save_checkpoint(tmp_path / "ok.pt", {"model": {"w": torch.ones(100)}})
    (tmp_path / "cut.pt").write_bytes((tmp_path / "ok.pt").read_bytes()[:50])
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "cut.pt")


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: the code a hostile checkpoint would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_loading_never_runs_code(make_trainer, toy_args, tmp_path):
    marker = tmp_path / "code-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "semiasr-checkpoint-v1", "model": _Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(evil)
    assert not marker.exists()
    # the same file as a run's newest checkpoint: resuming refuses it too
    trainer, _, _ = make_trainer(toy_args)
    (tmp_path / "run" / "checkpoints" / "step-5.pt").write_bytes(evil.read_bytes())
    with pytest.raises(CheckpointError):
        trainer.fit(resume=True)
    assert not marker.exists()
    # control: an unsafe load does run it, so the checks above could fail
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_checkpoint_holds_only_safe_types(make_trainer, toy_args, tmp_path):
    toy_args.max_steps, toy_args.ckpt_every = 2, 2
    trainer, _, _ = make_trainer(toy_args)
    trainer.fit()
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "step-2.pt", weights_only=True)
    assert ckpt["step"] == 2 and ckpt["scheduler"]["last_epoch"] == 2
    assert ckpt["ranks"][0]["loader"] == {"epoch": 0, "position": 2}
    assert set(ckpt["ranks"][0]["rng"]) >= {"python", "numpy", "torch"}
