"""Train several variants of one config side by side and compare their validation WER curves.

Each variant is a list of ``key=value`` overrides on top of ``--config`` and ``--base``; each is
trained by its own ``python -m semiasr train`` process (at most ``--jobs`` at a time, each with
``OMP_NUM_THREADS=--threads``), so a many-core machine or one GPU serves several at once. A run still
going at ``--deadline`` seconds is stopped with SIGTERM (the trainer saves and exits) and reported
with what it reached. Writes ``sweep.json`` (per variant: overrides, steps done, wall time, training
audio seconds per second, every validation WER, the last training loss) and ``sweep.png``
(validation WER against update, one line per variant) under ``--out-dir``.

    python benchmarks/sweep.py --config demo --variants variants.yaml [--jobs 4] [--threads 1] \
        [--deadline 3600] [--out-dir runs/sweep] [KEY=VALUE ...]

``variants.yaml`` maps a name to a list of overrides, e.g. ``{ctc03: [model.ctc_weight=0.3]}``;
trailing ``KEY=VALUE`` arguments apply to every variant.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def run_parallel(
    runs: dict[str, list[str]],
    config: str,
    run_root: Path,
    jobs: int,
    threads: int = 1,
    deadline: float = float("inf"),
    log_dir: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Train ``runs`` (name → overrides) in subprocesses, ``jobs`` at a time; stop what is still
    running at ``deadline`` (seconds from now). Returns name → summary (see :func:`summarise`)."""
    start = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    log_dir = log_dir or run_root
    log_dir.mkdir(parents=True, exist_ok=True)
    pending = list(runs.items())
    active: dict[str, tuple[subprocess.Popen, float]] = {}
    walls: dict[str, float] = {}
    codes: dict[str, int | None] = {}
    started: set[str] = set()
    while pending or active:
        late = time.monotonic() - start > deadline
        while pending and len(active) < jobs and not late:
            name, overrides = pending.pop(0)
            cmd = [
                sys.executable,
                "-m",
                "semiasr",
                "train",
                config,
                *overrides,
                f"name={name}",
                f"run_root={run_root}",
                "train.progress=false",
                "--overwrite",
            ]
            with (log_dir / f"{name}.log").open("w") as log:  # the child keeps its own handle
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            active[name] = (proc, time.monotonic())
            started.add(name)
        for name, (proc, t0) in list(active.items()):
            if late and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if proc.poll() is not None:
                walls[name] = time.monotonic() - t0
                codes[name] = proc.returncode
                del active[name]
        if late:
            for name, _ in pending:
                codes[name] = None
            pending = []
        time.sleep(1.0)
    # a run the deadline kept from starting reports nothing (not an older run's files)
    return {
        name: summarise(run_root / name, overrides, walls.get(name), codes.get(name))
        if name in started
        else summarise(None, overrides, None, None)
        for name, overrides in runs.items()
    }


def summarise(
    run_dir: Path | None, overrides: list[str], wall: float | None, code: int | None
) -> dict[str, Any]:
    """What a run reached, read from its ``metrics.jsonl`` (nothing for ``run_dir=None``: a run
    that never started)."""
    path = run_dir / "metrics.jsonl" if run_dir is not None else None
    records = (
        [json.loads(x) for x in path.read_text().splitlines() if x]
        if path is not None and path.exists()
        else []
    )
    train = [r for r in records if r.get("split") == "train"]
    evals = [(r["step"], r["wer"]) for r in records if r.get("split") == "eval" and "wer" in r]
    speeds = [r["audio_s_per_s"] for r in train if "audio_s_per_s" in r]
    return {
        "run": str(run_dir) if run_dir is not None else None,
        "overrides": overrides,
        "exit_code": code,
        "wall_s": wall,
        "steps": train[-1]["step"] if train else 0,
        "last_loss": train[-1]["loss"] if train else None,
        "audio_s_per_s": sorted(speeds)[len(speeds) // 2] if speeds else None,
        "valid_wer": evals,
        "final_valid_wer": evals[-1][1] if evals else None,
        "best_valid_wer": min(w for _, w in evals) if evals else None,
        "loss_curve": [(r["step"], r["loss"]) for r in train if "loss" in r],
    }


def plot(results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, r in sorted(results.items(), key=lambda kv: kv[1]["final_valid_wer"] or 1e9):
        if r["valid_wer"]:
            steps, wers = zip(*r["valid_wer"])
            ax.plot(steps, wers, marker="o", markersize=3, label=f"{name} ({wers[-1]:.1f})")
    ax.set_xlabel("update")
    ax.set_ylabel("validation WER %")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="demo")
    ap.add_argument("--variants", type=Path, required=True, help="YAML: name → [overrides]")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    ap.add_argument("--deadline", type=float, default=float("inf"), help="seconds")
    ap.add_argument("--out-dir", type=Path, default=Path("runs/sweep"))
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE for every variant")
    args = ap.parse_args(argv)
    variants = yaml.safe_load(args.variants.read_text()) or {}
    runs = {str(k): [*args.overrides, *(v or [])] for k, v in variants.items()}
    results = run_parallel(
        runs,
        args.config,
        args.out_dir / "runs",
        args.jobs,
        args.threads,
        args.deadline,
        args.out_dir / "logs",
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "sweep.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out_dir / "sweep.png", f"{args.config}: {len(runs)} variants")
    print(f"{'variant':<14}{'steps':>7}{'wall s':>8}{'audio s/s':>10}{'final WER':>10}  overrides")
    for name, r in sorted(results.items(), key=lambda kv: kv[1]["final_valid_wer"] or 1e9):
        fw = r["final_valid_wer"]
        print(
            f"{name:<14}{r['steps']:>7}{(r['wall_s'] or 0):>8.0f}{(r['audio_s_per_s'] or 0):>10.1f}"
            f"{(fw if fw is not None else float('nan')):>10.2f}  {' '.join(r['overrides'])}"
        )


if __name__ == "__main__":
    main()
