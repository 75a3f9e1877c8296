"""The throughput and decoding-speed benchmarks run end to end on a tiny batch (CPU, and CUDA where
there is one) and write the report they document. Their timings are not checked here: speed
targets live in the benchmarks' own comparisons (docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("device", DEVICES)
def test_train_throughput_reports_ours_without_a_peer(tmp_path: Path, device: str) -> None:
    out = tmp_path / "tt.json"
    args = ["--threads", "1", "--batch", "2", "--seconds", "1", "--rounds", "2"]
    proc = _run("train_throughput.py", *args, "--device", device, "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["device"].startswith(device)
    assert doc["peer"] is None and doc["peer_missing"] == "--ref-python not given"
    ours = doc["ours"]
    assert ours["steps"] == 2 and ours["params"] > 10_000_000  # preset s
    assert doc["batch"]["audio_seconds"] == pytest.approx(2.0)
    assert ours["median_audio_s_per_s"] == pytest.approx(2.0 / ours["median_step_s"])
    assert all(v >= 0 for v in ours["median_phase_s"].values())
    assert all(torch.isfinite(torch.tensor(ours["losses"])))
    assert "peer not run (--ref-python not given)" in proc.stdout


def test_train_throughput_times_the_objective_as_training_calls_it(tmp_path: Path) -> None:
    """--loss objective: TransducerObjective's blocked joiner + loss pass (float32, CPU) on the
    same model and batch gives the first step's loss of the logits path (the same seed, so the
    same weights, batch and dropout masks), with the forward timed inside the loss phase."""
    args = ["--threads", "1", "--batch", "2", "--seconds", "1", "--rounds", "1", "--warmup", "0"]
    docs = {}
    for loss in ("logits", "objective"):
        out = tmp_path / f"{loss}.json"
        proc = _run("train_throughput.py", *args, "--loss", loss, "--json", str(out))
        assert proc.returncode == 0, proc.stderr[-2000:]
        docs[loss] = json.loads(out.read_text())
    assert docs["objective"]["batch"]["loss_ours"] == "objective"
    first = {k: d["ours"]["losses"][0] for k, d in docs.items()}
    assert first["objective"] == pytest.approx(first["logits"], rel=1e-5)
    phases = docs["objective"]["ours"]["median_phase_s"]
    assert phases["loss"] > 10 * phases["forward"]


@pytest.mark.parametrize("device", DEVICES)
def test_decode_speed_reports_real_time_factors(tmp_path: Path, device: str) -> None:
    out = tmp_path / "ds.json"
    args = ["--presets", "xs", "--batch", "2", "--seconds", "1", "--repeats", "1"]
    proc = _run("decode_speed.py", *args, "--threads", "1", "--device", device, "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["device"].startswith(device)
    (result,) = doc["results"]
    assert result["preset"] == "xs"
    assert result["rtf"] and all(v > 0 for v in result["rtf"].values())


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_benchmarks_refuse_a_missing_gpu_with_a_clear_message() -> None:
    proc = _run("train_throughput.py", "--device", "cuda", "--rounds", "1")
    assert proc.returncode != 0
    assert "CUDA is not available" in proc.stderr


@pytest.mark.slow
def test_adaptation_table_pairs_speed_ups_and_marks_unsearched_rates(tmp_path: Path) -> None:
    """benchmarks/adaptation.py on a tiny demo run, 2 updates per method: the chosen rate is the
    lowest target_dev WER of the grid row's runs, each row's speed-up is the median of its runs'
    ratios to full fine-tuning's run of the same round, and a row outside --grid says its rate
    was not searched."""
    tiny = [
        "model.d_model=32",
        "model.num_layers=1",
        "model.num_heads=2",
        "model.predictor_dim=32",
        "model.joiner_dim=32",
    ]
    train = subprocess.run(
        [sys.executable, "-m", "semiasr", "train", "demo", "data.root=corpus",
         "data.synth_scale=0.01", *tiny, "train.max_steps=2", "sched.warmup_steps=1",
         "train.progress=false", "run_root=runs", "name=tiny"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-2000:]
    out = tmp_path / "table"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "adaptation.py"), "runs/tiny", "--steps", "2",
         "--methods", "none", "full", "decoder", "--grid", "full", "--lrs", "0.001", "0.002",
         "--set", "train.log_every=1", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "adaptation.json").read_text())
    rows = {r["label"]: r for r in doc["rows"]}
    assert set(rows) == {"none", "full", "decoder"}
    fulls = [r for r in doc["tried"] if r["label"] == "full"]
    assert [r["lr"] for r in fulls] == [0.001, 0.002]
    assert rows["full"]["target_dev_wer"] == min(r["target_dev_wer"] for r in fulls)
    assert rows["full"]["searched"] and not rows["decoder"]["searched"]
    assert rows["full"]["speedup"] == pytest.approx(1.0)
    (dec,) = [r for r in doc["tried"] if r["label"] == "decoder"]
    assert rows["decoder"]["speedup"] == pytest.approx(fulls[0]["step_s"] / dec["step_s"])
    assert rows["none"]["speedup"] != rows["none"]["speedup"]  # NaN: nothing trained
    table = (out / "adaptation.md").read_text()
    assert "(not searched)" in table.split("| decoder |")[1].splitlines()[0]
    assert rows["decoder"]["activation_MiB"] > 0
    # each row's process reports its peak memory and allocator (glibc's unless SEMIASR_MALLOC=tuned)
    assert rows["decoder"]["max_rss_MiB"] > 0 and rows["decoder"]["malloc"]
    # the same tiny run drives the paired step timer, convolution adapters included
    ab = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "adapter_step_ab.py"), "runs/tiny",
         "--batches", "3", "--warmup", "0", "--threads", "1", "--a", "full",
         "--b", "adapters", "bottleneck=4", "adapter_conv_kernel=3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert ab.returncode == 0, ab.stderr[-3000:]
    pair = json.loads(ab.stdout)
    assert pair["b"] == ["adapters", "bottleneck=4", "adapter_conv_kernel=3"]
    assert pair["timed_batches"] == 2  # an even number: one led by each set-up
    assert set(pair["by_order"]) == {"a first", "b first"}
    assert pair["a_median_s"] > 0 and pair["b_median_s"] > 0
    assert pair["b_over_a"] == pytest.approx(pair["b_median_s"] / pair["a_median_s"])
    assert pair["b_over_a_mean"] == pytest.approx(pair["b_mean_s"] / pair["a_mean_s"])
    assert pair["second_pad_frames"] == 4 and pair["shape_collisions"] >= 0 and pair["malloc"]
    # it steps as the trainer does: the run's optimizer (fused AdamW on a CPU) and its clipping
    tiny_cfg = yaml.safe_load((tmp_path / "runs" / "tiny" / "config.yaml").read_text())
    assert pair["optimizer"] == "AdamW (fused)"
    assert pair["grad_clip"] == tiny_cfg["train"]["grad_clip"]
    assert pair["precision"] == "fp32" and pair["flush_denormal"]
    # --paired-only adds the paired column to the table above (two calls for its one trained row
    # besides full's), training nothing
    again = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "adaptation.py"), "runs/tiny", "--paired", "2",
         "--paired-batches", "3", "--paired-warmup", "0", "--paired-only", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    paired = {r["label"]: r for r in json.loads((out / "adaptation.json").read_text())["rows"]}
    assert "paired_speedup" not in paired["none"] and "paired_speedup" not in paired["full"]
    runs = paired["decoder"]["paired_speedup_runs"]
    assert len(runs) == 2 and all(x > 0 for x in runs)
    assert paired["decoder"]["paired_speedup"] == pytest.approx(sum(runs) / 2)
    assert paired["decoder"]["target_dev_wer"] == rows["decoder"]["target_dev_wer"]  # untouched
    header, _, *body = (out / "adaptation.md").read_text().splitlines()
    assert "paired speed-up" in header
    (decoder_line,) = [x for x in body if x.startswith("| decoder |")]
    assert f"{paired['decoder']['paired_speedup']:.2f}× (" in decoder_line
    # a row whose timing fails keeps its error; the table and the other rows are not lost
    doc = json.loads((out / "adaptation.json").read_text())
    for r in doc["rows"]:
        r.pop("paired_speedup", None), r.pop("paired_speedup_runs", None)
        if r["label"] == "decoder":
            r["overrides"] = ["adapt.no_such_field=1"]
    (out / "adaptation.json").write_text(json.dumps(doc))
    bad = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "adaptation.py"), "runs/tiny", "--paired", "1",
         "--paired-batches", "3", "--paired-warmup", "0", "--paired-only", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and "paired timing failed" in bad.stderr
    kept = {r["label"]: r for r in json.loads((out / "adaptation.json").read_text())["rows"]}
    assert "no_such_field" in kept["decoder"]["paired_error"]
    assert kept["none"]["target_test_wer"] == rows["none"]["target_test_wer"]
    # and a table measured from another base run is refused
    other = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "adaptation.py"), "runs/other", "--paired", "1",
         "--paired-only", "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert other.returncode != 0 and "was measured with base_run" in other.stderr


def _step_ab_module():
    spec = importlib.util.spec_from_file_location(
        "step_ab", ROOT / "benchmarks" / "adapter_step_ab.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_paired_step_timer_gives_the_second_model_new_shapes_of_the_same_batch() -> None:
    """The second model on a batch steps it with 4 more feature frames and one more token column
    of zero padding: every shape differs (no oneDNN primitive of the first model's step fits), the
    utterances and their lengths do not."""
    from semiasr.data.batch import Batch

    batch = Batch(
        features=torch.randn(3, 50, 8),
        feature_lengths=torch.tensor([50, 41, 12]),
        tokens=torch.randint(1, 9, (3, 6)),
        token_lengths=torch.tensor([6, 4, 2]),
        texts=["a", "b", "c"],
        domains=torch.zeros(3, dtype=torch.long),
        cut_ids=["x", "y", "z"],
    )
    padded = _step_ab_module().own_shape(batch, 4)
    assert padded.features.shape == (3, 54, 8) and padded.tokens.shape == (3, 7)
    assert torch.equal(padded.features[:, :50], batch.features)
    assert torch.equal(padded.tokens[:, :6], batch.tokens)
    assert not padded.features[:, 50:].any() and not padded.tokens[:, 6:].any()
    assert padded.feature_lengths is batch.feature_lengths
    assert padded.token_lengths is batch.token_lengths


def test_paired_step_timer_reads_adapt_fields_and_other_overrides() -> None:
    """adapter_step_ab.py: ``bottleneck=64`` is an AdaptConfig field (``adapt.`` put before it);
    ``seed=1`` or ``train.precision=fp32`` are config overrides as written; --set comes first."""
    mod = _step_ab_module()
    method, overrides = mod.overrides_of(
        ["adapters", "bottleneck=64", "adapter_act=silu", "seed=1", "train.precision=fp32"],
        ["data.synth_scale=0.5"],
    )
    assert method == "adapters"
    assert overrides == [
        "data.synth_scale=0.5", "adapt.bottleneck=64", "adapt.adapter_act=silu", "seed=1",
        "train.precision=fp32",
    ]  # fmt: skip
    with pytest.raises(SystemExit, match="not key=value"):
        mod.overrides_of(["adapters", "bottleneck"], [])
