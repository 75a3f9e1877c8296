"""The throughput and decoding-speed benchmarks run end to end on a tiny batch (CPU, and CUDA where
there is one) and write the report they document. Their timings are not checked here: speed
targets live in the benchmarks' own comparisons (docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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
