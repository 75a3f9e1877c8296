"""Real processes: a run SIGKILLed mid-epoch and resumed ends where an uninterrupted run ends;
``torchrun --nproc_per_node=2`` (gloo, CPU) makes the same updates as one process on the global
batch. The uninterrupted / one-process references run in the test's own process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from semiasr.train import load_checkpoint

TOY = Path(__file__).with_name("train_toy.py")
pytestmark = pytest.mark.slow


def _workdir(tmp_path: Path) -> Path:
    shutil.copy(TOY, tmp_path / "train_toy.py")
    return tmp_path


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "GLOO_SOCKET_IFNAME": "lo",
    }


@pytest.fixture
def started():
    """Processes a test starts; any still running at its end are killed with their children."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _start(procs: list, cwd: Path, *args: str, ddp: bool = False) -> subprocess.Popen:
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] if ddp else []
    cmd = [sys.executable, *launcher, "-m", "train_toy", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so that a hung job can be killed whole
    )
    procs.append(proc)
    return proc


def _finish(proc: subprocess.Popen, timeout: float = 150) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{proc.args} ran over {timeout} s\n{out}\n{err[-3000:]}")
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, toy, started):
    """AdamW + warm-up schedule + dropout + shuffling + NumPy/Python augmentation, accumulation 2
    over an epoch of 7 batches (so updates straddle epochs); killed while drawing batch 11, after
    ``step-4.pt`` (epoch 1, position 1) was written."""
    cwd = _workdir(tmp_path)
    common = ["--max-steps", "12", "--ckpt-every", "2", "--accum", "2"]
    victim = _start(started, cwd, *common, "--name", "cut", "--out", "cut.pt", "--stall-at", "11")
    reference = [*common, "--name", "full", "--out", str(cwd / "full.pt")]
    toy.main([*reference, "--run-root", str(cwd / "runs")])
    ckpt = cwd / "runs" / "cut" / "checkpoints" / "step-4.pt"
    deadline = time.monotonic() + 120
    while not (ckpt.exists() and (cwd / "stalled").exists()):
        assert victim.poll() is None, f"the run ended before it was killed: {victim.communicate()}"
        assert time.monotonic() < deadline, "no checkpoint appeared within 120 s"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    assert not (cwd / "cut.pt").exists()
    saved = load_checkpoint(ckpt)
    assert saved["step"] == 4 and saved["ranks"][0]["loader"] == {"epoch": 1, "position": 1}

    resumed = _finish(_start(started, cwd, *common, "--name", "cut", "--out", "cut.pt", "--resume"))
    assert resumed["steps"] == 12
    diff = _max_diff(_weights(cwd / "cut.pt"), _weights(cwd / "full.pt"))
    assert diff <= 1e-6, f"resumed run differs from the uninterrupted one by {diff}"
    steps = [
        json.loads(x)["step"] for x in (cwd / "runs/cut/metrics.jsonl").read_text().splitlines()
    ]
    assert steps == list(range(1, 13))  # lines of the redone updates were replaced, not repeated


def test_torchrun_two_ranks_equal_one_process_on_the_global_batch(tmp_path, toy, started):
    """Each rank draws 4 of each global batch of 8; DDP averages gradients, so with a per-utterance
    mean objective (SGD, clipping active, accumulation 2) the weights match one process drawing 8.
    The DDP job also stops after 4 updates and resumes to 6 in the same processes (per-rank loader
    positions and random states). Rank 0 alone evaluates, at update 3, which is no checkpoint
    step: the checkpoint every evaluation is followed by is a collective call, which must not
    leave rank 1 waiting at the next all-reduce."""
    cwd = _workdir(tmp_path)
    common = ["--optim", "sgd", "--lr", "0.2", "--dropout", "0", "--no-augment"]
    common += ["--accum", "2", "--grad-clip", "0.5", "--ckpt-every", "2", "--max-steps", "6"]
    common += ["--eval-every", "3"]
    ddp_args = [*common, "--batch-size", "4", "--name", "ddp", "--out", "ddp.pt"]
    ddp_run = _start(started, cwd, *ddp_args, "--resume-at", "4", ddp=True)
    one = toy.main(
        [
            *common,
            "--batch-size",
            "8",
            "--run-root",
            str(cwd / "runs"),
            "--name",
            "one",
            "--out",
            str(cwd / "one.pt"),
        ]
    )
    ddp = _finish(ddp_run, timeout=180)
    assert (cwd / "runs" / "ddp" / "checkpoints" / "step-3.pt").is_file()  # the evaluation's
    ckpt = load_checkpoint(cwd / "runs" / "ddp" / "checkpoints" / "step-4.pt")
    assert [r["loader"]["position"] for r in ckpt["ranks"]] == [2, 2]  # 3 per epoch, 8 drawn
    assert ddp["resumed"].endswith("step-4.pt")
    assert ddp["steps"] == one["steps"] == 6
    diff = _max_diff(_weights(cwd / "ddp.pt"), _weights(cwd / "one.pt"))
    assert diff <= 1e-6, f"two ranks differ from one process by {diff}"
    assert _max_diff(_weights(cwd / "ddp.pt"), _weights(cwd / "ddp.pt.rank1")) == 0.0
    # the logged loss and objective metric are means over the ranks: those of the global batch
    logged = {
        name: {
            r["step"]: r
            for r in map(
                json.loads, (cwd / "runs" / name / "metrics.jsonl").read_text().splitlines()
            )
            if r.get("split") != "eval"
        }
        for name in ("ddp", "one")
    }
    assert sorted(logged["ddp"]) == sorted(logged["one"]) == list(range(1, 7))
    evals = [
        json.loads(line)
        for line in (cwd / "runs" / "ddp" / "metrics.jsonl").read_text().splitlines()
        if '"eval"' in line
    ]
    assert [r["step"] for r in evals] == [3, 4, 6] and all(r["weight_norm"] > 0 for r in evals)
    for step, one_record in logged["one"].items():
        for key in ("loss", "acc"):
            assert logged["ddp"][step][key] == pytest.approx(one_record[key], abs=1e-6), (step, key)
