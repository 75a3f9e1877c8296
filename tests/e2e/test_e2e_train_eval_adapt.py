"""A user's whole path through the command line, on a tiny synthetic corpus: synthesise, train, resume,
evaluate, decode, transcribe, adapt. Slow (about a minute), so marked; CI still runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


TINY_MODEL = [
    "model.d_model=32",
    "model.num_layers=1",
    "model.num_heads=2",
    "model.predictor_dim=32",
    "model.joiner_dim=32",
]
ENV = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "semiasr", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=ENV)


def semiasr(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    r = run(*args, cwd=cwd)
    assert r.returncode == 0, f"semiasr {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


def test_train_resume_eval_decode_transcribe_adapt(workdir: Path) -> None:
    common = [
        "data.root=corpus",
        "data.synth_scale=0.01",
        *TINY_MODEL,
        "train.ckpt_every=2",
        "train.eval_every=2",
        "sched.warmup_steps=1",
        "train.progress=false",
        "run_root=runs",
        "name=tiny",
    ]
    semiasr("train", "demo", *common, "train.max_steps=2", cwd=workdir)
    rundir = workdir / "runs" / "tiny"
    assert (rundir / "checkpoints" / "step-2.pt").is_file()
    assert (rundir / "tokenizer.json").is_file() and (rundir / "config.yaml").is_file()
    # Training the same name again is refused; --resume continues to the new step count.
    again = run("train", "demo", *common, "train.max_steps=4", cwd=workdir)
    assert again.returncode == 2 and "--resume" in again.stderr
    semiasr("train", "demo", *common, "train.max_steps=4", "--resume", cwd=workdir)
    assert (rundir / "checkpoints" / "step-4.pt").is_file()
    steps = [
        json.loads(line)["step"] for line in (rundir / "metrics.jsonl").read_text().splitlines()
    ]
    assert max(steps) == 4

    out = semiasr("eval", "runs/tiny", "source_test", cwd=workdir).stdout
    assert "source_test: WER" in out
    report = json.loads((rundir / "eval" / "source_test" / "report.json").read_text())
    assert report["num_utterances"] > 0 and report["wer"]["ref"] > 0

    # beam search writes beside the greedy report, not over it
    semiasr("eval", "runs/tiny", "source_test", "--method", "beam", "--beam", "2", cwd=workdir)
    beam = json.loads((rundir / "eval" / "source_test-beam" / "report.json").read_text())
    assert beam["method"] == "beam"
    assert json.loads((rundir / "eval" / "source_test" / "report.json").read_text()) == report

    # beam search with shallow fusion of an n-gram LM of the run's training transcripts
    fused = ["--method", "beam", "--lm-weight", "0.5", "--token-bonus", "1", "--lm-order", "4"]
    out = semiasr("eval", "runs/tiny", "source_dev", *fused, "--out", "lm", cwd=workdir).stdout
    assert "source_dev: WER" in out
    report = json.loads((workdir / "lm" / "source_dev" / "report.json").read_text())
    assert report["lm_weight"] == 0.5 and report["lm_order"] == 4
    bad = run(
        "eval",
        "runs/tiny",
        "source_dev",
        "--method",
        "beam",
        "--lm-weight",
        "1",
        "--lm",
        "missing.json",
        cwd=workdir,
    )
    assert bad.returncode == 2 and "missing.json" in bad.stderr
    greedy = run("eval", "runs/tiny", "source_dev", "--lm-weight", "1", cwd=workdir)
    assert greedy.returncode == 2 and "--method beam" in greedy.stderr

    semiasr(
        "decode", "runs/tiny", "target_test", "--out", "hyps.jsonl", "--device", "auto", cwd=workdir
    )
    hyps = [json.loads(line) for line in (workdir / "hyps.jsonl").read_text().splitlines()]
    assert hyps and all(h["domain"] == "target" for h in hyps)

    wav = sorted((workdir / "corpus" / "audio").rglob("*.wav"))[0]
    rec = json.loads(
        semiasr(
            "transcribe", "runs/tiny", str(wav), "--device", "auto", cwd=workdir
        ).stdout.splitlines()[0]
    )
    assert rec["file"] == str(wav) and rec["audio_s"] > 0 and isinstance(rec["text"], str)

    semiasr("adapt", "runs/tiny", "train.max_steps=2", "--method", "adapters", cwd=workdir)
    adapted = workdir / "runs" / "tiny-adapters"
    assert (adapted / "adaptation.pt").is_file()
    assert (adapted / "eval" / "target_test" / "report.json").is_file()

    # a run with per-domain modules transcribes only with the files' domain named; the source
    # domain's modules are the base model's (MDA leaves that domain unchanged)
    semiasr("adapt", "runs/tiny", "train.max_steps=2", "--method", "mda", cwd=workdir)
    missing = run("transcribe", "runs/tiny-mda", str(wav), "--checkpoint", "last", cwd=workdir)
    assert missing.returncode == 2 and "--domain" in missing.stderr
    texts = {
        d: json.loads(
            semiasr(
                "transcribe", "runs/tiny-mda", str(wav), "--checkpoint", "last", "--domain", d,
                "--method", "beam", cwd=workdir,
            ).stdout.splitlines()[0]
        )["text"]
        for d in ("source", "target")
    }  # fmt: skip
    # the base checkpoint `semiasr adapt` adapted (the averaged one, where the run has it)
    base = semiasr("transcribe", "runs/tiny", str(wav), "--checkpoint", "averaged", "--method",
                   "beam", cwd=workdir).stdout  # fmt: skip
    assert texts["source"] == json.loads(base.splitlines()[0])["text"]
    wrong = run("transcribe", "runs/tiny", str(wav), "--domain", "target", cwd=workdir)
    assert wrong.returncode == 2 and "mda" in wrong.stderr

    # a config that fails stops before --overwrite deletes the run, and names what failed
    for bad, named in (
        (["data.train=[no_such_split]"], "no_such_split"),
        (["sched.name=cosine", "sched.warmup_steps=9"], "warmup_steps"),
    ):
        failed = run(
            "train", "demo", *common, "train.max_steps=4", *bad, "--overwrite", cwd=workdir
        )
        assert failed.returncode == 2 and named in failed.stderr, failed.stderr
        assert (rundir / "checkpoints" / "step-4.pt").is_file()
    # resuming with another model is refused before anything is rewritten
    other = run("train", "demo", *common, "train.max_steps=6", "model.d_model=16", "--resume",
                cwd=workdir)  # fmt: skip
    assert other.returncode == 2 and "model.d_model" in other.stderr
    assert "d_model: 16" not in (rundir / "config.yaml").read_text()
    # the base trains on: resuming its adaptation would continue it on other weights — refused
    semiasr("train", "demo", *common, "train.max_steps=6", "--resume", cwd=workdir)
    stale = run("adapt", "runs/tiny", "train.max_steps=3", "--method", "adapters", "--resume",
                cwd=workdir)  # fmt: skip
    assert stale.returncode == 2 and "--overwrite" in stale.stderr

    # pseudo labels voted by the two models, written as a manifest (an untrained model's
    # hypotheses are often empty: those are left out and counted)
    out = semiasr(
        "pseudo-label",
        "runs/tiny",
        "runs/tiny-adapters",
        "--split",
        "target_dev",
        "--out",
        "pl/target_dev.jsonl",
        "--checkpoint",
        "last",
        cwd=workdir,
    ).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["utterances"] > 0 and summary["runs"] == ["runs/tiny", "runs/tiny-adapters"]
    assert summary["written"] + summary["dropped_empty"] == summary["utterances"]
    written = (workdir / "pl" / "target_dev.jsonl").read_text().splitlines()
    assert len(written) == summary["written"]


def test_demo_reports_greedy_and_lm_fused_beam_search(workdir: Path) -> None:
    tiny = [
        "data.root=corpus-demo",
        "data.synth_scale=0.01",
        *TINY_MODEL,
        "train.max_steps=2",
        "train.ckpt_every=2",
        "train.eval_every=2",
        "train.average_last=0",
        "sched.warmup_steps=1",
        "train.progress=false",
        "run_root=runs",
        "name=tinydemo",
    ]
    semiasr("demo", "--quick", *tiny, cwd=workdir)
    run_dir = workdir / "runs" / "tinydemo"
    text = (run_dir / "report.md").read_text()
    assert "source model, greedy" in text and "adapted with adapters, greedy" in text
    assert "source model, beam 4 + 10-gram LM" in text
    rows = json.loads((run_dir / "report.json").read_text())["results"]
    assert set(rows["source model, greedy"]) == {"source_test", "target_test"}
    assert (run_dir / "eval" / "source_test-beam" / "report.json").is_file()


def test_pretrain_then_train_from_the_pretrained_encoder(workdir: Path) -> None:
    """`semiasr pretrain` (BEST-RQ on source and unlabelled target audio), then a supervised run
    whose encoder starts from it; a config whose encoder does not fit is refused (exit 2)."""
    common = [
        "data.root=corpus-ssl",
        "data.synth_scale=0.01",
        *TINY_MODEL,
        "train.ckpt_every=2",
        "train.eval_every=2",
        "sched.warmup_steps=1",
        "train.progress=false",
        "run_root=runs",
    ]
    semiasr(
        "pretrain",
        "demo",
        *common,
        "name=pre",
        "train.max_steps=2",
        "ssl.codebook_size=64",
        "ssl.splits=[source_train,target_unlabelled]",
        cwd=workdir,
    )
    pre = workdir / "runs" / "pre"
    evals = [json.loads(x) for x in (pre / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "eval" and 0.0 <= r["masked_acc"] <= 1.0 for r in evals)
    assert (pre / "checkpoints" / "best.pt").is_file()
    # no average of pretraining checkpoints (the demo recipe's average_last is for ASR)
    assert not (pre / "checkpoints" / "averaged.pt").exists()
    semiasr(
        "train", "demo", *common, "name=fine", "train.max_steps=2", "model.init_encoder=runs/pre",
        cwd=workdir,
    )  # fmt: skip
    assert (
        "encoder initialised from runs/pre/checkpoints/step-2.pt"
        in (workdir / "runs" / "fine" / "log.txt").read_text()
    )
    bad = run(
        "train", "demo", *common, "name=bad", "model.d_model=64", "model.init_encoder=runs/pre",
        cwd=workdir,
    )  # fmt: skip
    assert bad.returncode == 2 and "shape mismatches" in bad.stderr


# JUST-style training of the tiny model on the tiny corpus (the joint tests below)
JOINT = [
    "data.root=corpus-joint",
    "data.synth_scale=0.01",
    *TINY_MODEL,
    "sched.name=constant",  # the same rate whatever max_steps says
    "sched.warmup_steps=0",
    "train.progress=false",
    "train.ckpt_every=2",
    "train.eval_every=0",
    "train.average_last=0",
    "run_root=runs",
    "ssl.joint_weight=0.5",
    "ssl.codebook_size=64",
    "ssl.splits=[target_unlabelled]",
]


@pytest.mark.parametrize("workers", [0, 1])
def test_joint_training_resumes_to_the_weights_of_an_uninterrupted_run(
    workdir: Path, workers: int
) -> None:
    """JUST-style training (supervised source batches + BEST-RQ on target audio): stopping after 2
    updates and resuming to 4 gives the weights — the BEST-RQ head's too — of 4 updates in one go,
    so the unlabelled stream's position and the masks' random state are restored."""
    import torch

    common = [
        *JOINT,
        f"data.batching.num_workers={workers}",  # loader processes must not shift the masks
    ]
    n4, n2 = f"name=joint4-w{workers}", f"name=joint2-w{workers}"
    semiasr("train", "demo", *common, n4, "train.max_steps=4", cwd=workdir)
    semiasr("train", "demo", *common, n2, "train.max_steps=2", cwd=workdir)
    semiasr("train", "demo", *common, n2, "train.max_steps=4", "--resume", cwd=workdir)
    runs = workdir / "runs"
    a, b = (
        torch.load(runs / n / "checkpoints" / "step-4.pt", weights_only=True)
        for n in (f"joint4-w{workers}", f"joint2-w{workers}")
    )
    assert "head.heads.weight" in a["objective"]
    for part in ("model", "objective"):
        for k, v in a[part].items():
            if isinstance(v, torch.Tensor):
                torch.testing.assert_close(b[part][k], v, rtol=0, atol=1e-6, msg=k)
    assert a["objective"]["_extra_state"] == b["objective"]["_extra_state"]  # stream position
    metrics = [
        json.loads(x)
        for x in (runs / f"joint4-w{workers}" / "metrics.jsonl").read_text().splitlines()
    ]
    assert all("ssl_loss" in r and "masked_acc" in r for r in metrics if r["split"] == "train")


def test_joint_training_runs_under_torchrun_with_two_ranks(workdir: Path) -> None:
    """JUST-style training under ``torchrun --nproc_per_node=2`` (gloo, CPU): each rank reads its
    own shard of the unlabelled audio and the BEST-RQ head is reduced with the model (a parameter
    that got no gradient on one rank would stop DDP with an error). A smoke test of the DDP path:
    rank 0's checkpoint holds the head and the stream position, and the metrics the joint loss."""
    import torch

    args = [*JOINT, "name=joint-ddp", "train.precision=bf16", "train.log_every=1"]
    args += ["train.max_steps=2"]
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    r = subprocess.run(
        [sys.executable, *launcher, "-m", "semiasr", "train", "demo", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        env={**ENV, "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1"},
    )
    assert r.returncode == 0, f"torchrun failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    run_dir = workdir / "runs" / "joint-ddp"
    ckpt = torch.load(run_dir / "checkpoints" / "step-2.pt", weights_only=True)
    assert "head.heads.weight" in ckpt["objective"] and ckpt["objective"]["_extra_state"]
    assert len(ckpt["ranks"]) == 2  # both ranks' loader and random states
    metrics = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in metrics if m["split"] == "train"]
    assert train and all(m["ssl_loss"] > 0 and "sup_loss" in m for m in train)
