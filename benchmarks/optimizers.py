"""FAdam against torch.optim.AdamW.

``step`` mode: the time of one ``optimizer.step()`` of FAdam (multi-tensor path) against
``torch.optim.AdamW(foreach=True)`` on a transformer-shaped parameter set of about 30M
parameters (9 blocks of d=512, ff=2048, plus a 1024-token embedding and output layer) with
fixed random gradients. The two are timed interleaved (alternating which goes first), after
warm-up steps, and the median of ``--repeats`` steps is reported with the ratio FAdam/AdamW
(goal ≤ 1.5), both in wall-clock time and in the CPU time of this process (``--threads 1`` by
default: on a machine shared with other jobs, CPU time is the steadier of the two). With
``--per-tensor``, FAdam's per-tensor path (``foreach=False``) is timed in the same
interleaving. AdamW's other two implementations (``optim.implementation``: ``fused=True``, one
kernel for all tensors, and the per-parameter loop, PyTorch's CPU default) are timed with them.
``--shapes demo`` times the parameter set of the demo's model (``conf/demo.yaml``: 2.0M
parameters in 167 tensors, where the per-tensor overhead dominates) instead of the 30M one.

    python benchmarks/optimizers.py step [--repeats 15] [--threads 1] [--per-tensor] \
        [--shapes transformer|demo] [--out runs/bench/optimizers_step.json]

Prints a table and writes JSON (timings in milliseconds, machine and versions).

``train`` mode: trains the demo's source model (``--config demo``) with AdamW and with FAdam for
the same number of updates. Each optimizer's learning rate is picked from a small grid by the
validation WER of seed ``--seeds[0]`` (``--pick-split source_dev``: the whole dev split, decoded
from the last checkpoint); the picked rate is then trained with every seed, and the test splits
(``data.test``) are decoded greedily from each run's last checkpoint. ``--reuse`` reads finished
runs of the same config back instead of training them again. Writes
``train.json`` (grid, picked rates, WER per seed, mean ± sd) and ``loss_curves.png`` (training
loss of every run at the picked rates) under ``--out-dir``; runs go to ``--out-dir``/runs.

    python benchmarks/optimizers.py train [--config demo] [--steps 2000] [--seeds 0 1 2] \
        [--adamw-lrs 5e-4 1e-3 2e-3] [--fadam-lrs 5e-4 1e-3 2e-3] [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from semiasr.optim import FAdam

D_MODEL, D_FF, N_BLOCKS, VOCAB = 512, 2048, 9, 1024


def transformer_shapes(d: int = D_MODEL, ff: int = D_FF, blocks: int = N_BLOCKS) -> list[tuple]:
    """Shapes of an embedding, ``blocks`` pre-norm transformer blocks and an output layer."""
    block = [
        (d,),  # norm 1 scale
        (d,),  # norm 1 shift
        (3 * d, d),  # q, k, v projection
        (3 * d,),
        (d, d),  # attention output
        (d,),
        (d,),  # norm 2 scale
        (d,),  # norm 2 shift
        (ff, d),  # feed-forward in
        (ff,),
        (d, ff),  # feed-forward out
        (d,),
    ]
    return [(VOCAB, d)] + block * blocks + [(d,), (d,), (VOCAB, d), (VOCAB,)]


def make_params(shapes: list[tuple], seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes:
        p = (0.02 * torch.randn(shape, generator=gen)).requires_grad_()
        p.grad = 1e-3 * torch.randn(shape, generator=gen)
        params.append(p)
    return params


def time_step(opt: torch.optim.Optimizer) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one ``opt.step()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    opt.step()
    return (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3


def demo_shapes() -> list[tuple]:
    """The parameter shapes of the demo's model (built from ``conf/demo.yaml``, 28 characters)."""
    from semiasr.config import as_object, load_config
    from semiasr.models.build import build_model

    cfg = as_object(load_config("demo"))
    model = build_model(cfg.model, 28, cfg.data.features.num_mel_bins)
    return [tuple(p.shape) for p in model.parameters()]


def bench_step(
    repeats: int, warmup: int, per_tensor: bool, shapes_of: str = "transformer"
) -> dict[str, Any]:
    shapes = demo_shapes() if shapes_of == "demo" else transformer_shapes()
    n_params = sum(torch.Size(s).numel() for s in shapes)
    opts = {
        "fadam_foreach": FAdam(make_params(shapes, 0), lr=1e-3, weight_decay=0.1, foreach=True),
        "adamw_foreach": torch.optim.AdamW(
            make_params(shapes, 0), lr=1e-3, weight_decay=0.1, foreach=True
        ),
        "adamw_fused": torch.optim.AdamW(
            make_params(shapes, 0), lr=1e-3, weight_decay=0.1, fused=True
        ),
        "adamw_loop": torch.optim.AdamW(
            make_params(shapes, 0), lr=1e-3, weight_decay=0.1, foreach=False
        ),
    }
    if per_tensor:
        opts["fadam_per_tensor"] = FAdam(
            make_params(shapes, 0), lr=1e-3, weight_decay=0.1, foreach=False
        )
    names = list(opts)
    for _ in range(warmup):
        for name in names:
            opts[name].step()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            w, c = time_step(opts[name])
            wall[name].append(w)
            cpu[name].append(c)
    result: dict[str, Any] = {
        "mode": "step",
        "shapes": shapes_of,
        "n_params": n_params,
        "n_tensors": len(shapes),
        "repeats": repeats,
        "warmup": warmup,
    }
    for clock, times in (("wall", wall), ("cpu", cpu)):
        median = {name: statistics.median(ts) for name, ts in times.items()}
        paired = [f / a for f, a in zip(times["fadam_foreach"], times["adamw_foreach"])]
        result[clock] = {
            "median_ms": median,
            "ratio_fadam_over_adamw": median["fadam_foreach"] / median["adamw_foreach"],
            "median_paired_ratio": statistics.median(paired),
            "times_ms": times,
        }
    result["machine"] = machine()
    return result


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "note": "shared machine: other jobs ran at the same time; compare ratios, not times",
    }


def print_step(result: dict[str, Any]) -> None:
    print(
        f"optimizer step, {result['n_params'] / 1e6:.1f}M parameters in {result['n_tensors']} "
        f"tensors, median of {result['repeats']} interleaved steps "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads)"
    )
    print(f"{'optimizer':<20}{'wall ms':>10}{'vs AdamW':>10}{'CPU ms':>10}{'vs AdamW':>10}")
    wall, cpu = result["wall"]["median_ms"], result["cpu"]["median_ms"]
    for name in wall:
        print(
            f"{name:<20}{wall[name]:>10.1f}{wall[name] / wall['adamw_foreach']:>10.2f}"
            f"{cpu[name]:>10.1f}{cpu[name] / cpu['adamw_foreach']:>10.2f}"
        )
    print(
        f"FAdam(foreach) / AdamW(foreach): wall {result['wall']['ratio_fadam_over_adamw']:.2f}, "
        f"CPU {result['cpu']['ratio_fadam_over_adamw']:.2f} (goal <= 1.5)"
    )


# ---------------------------------------------------------------- train mode


def _train_one(config: str, overrides: list[str], run_root: Path, name: str) -> dict[str, Any]:
    """Train one run (overwriting a previous one of the same name); its validation WER (last
    evaluation) and its training-loss curve from ``metrics.jsonl``."""
    from semiasr.config import load_config
    from semiasr.tasks import train

    cfg = load_config(config, [*overrides, f"name={name}", f"run_root={run_root}"])
    run, summary = train(cfg, mode="overwrite", progress=False)
    records = [json.loads(line) for line in run.metrics_file.read_text().splitlines() if line]
    curve = [(r["step"], r["loss"]) for r in records if r.get("split") == "train" and "loss" in r]
    evals = [r["wer"] for r in records if r.get("split") == "eval" and "wer" in r]
    return {
        "run": str(run.path),
        "valid_wer": evals[-1] if evals else None,
        "final_loss": summary.final_loss,
        "curve": curve,
        "test_splits": list(cfg.data.test),
    }


def _test_wer(run_path: str, splits: list[str], device: str = "cpu") -> dict[str, float]:
    from semiasr.eval import evaluate
    from semiasr.tasks import decode_split, load_trained

    # the last checkpoint: "best" was chosen on the validation split, which for the demo is the
    # source test set itself
    decoder = load_trained(run_path, "last", device=device)
    return {split: evaluate(decode_split(decoder, split)[0]).wer for split in splits}


def _pick(grid: dict[str, dict[str, Any]]) -> str:
    """The learning rate (key) with the lowest validation WER (final loss where none)."""

    def score(item: tuple[str, dict[str, Any]]) -> float:
        r = item[1]
        value = r["valid_wer"] if r["valid_wer"] is not None else r["final_loss"]
        return math.inf if value is None or not math.isfinite(value) else value

    return min(grid.items(), key=score)[0]


def _covers(have: Any, want: Any, default: Any) -> bool:
    """Whether a saved config ``have`` equals ``want``; a key the saved config lacks (added to the
    schema later) must hold its schema ``default`` in ``want``."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return False
        default = default if isinstance(default, dict) else {}
        return all(
            _covers(have[k], v, default.get(k)) if k in have else v == default.get(k)
            for k, v in want.items()
        ) and set(have) <= set(want)
    return have == want


EVAL_ONLY = ("train.eval_every", "data.valid", "decode")
"""Config keys that change what a run reports, not the weights it trains: ``--reuse`` ignores
them when ``--pick-split`` decodes the dev split itself (else the in-training validation WER
picks the rate, and it must come from the same split for every run)."""


def _drop(cfg: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        cfg = cfg.get(p, {})
    cfg.pop(last, None)


def _finished(
    config: str,
    overrides: list[str],
    run_root: Path,
    name: str,
    steps: int,
    ignore_eval: bool = False,
) -> bool:
    """Whether ``run_root/name`` is a finished run (a ``step-<steps>.pt`` checkpoint) of exactly
    this config, so that ``--reuse`` need not train it again."""
    import yaml

    from semiasr.config import load_config, to_yaml

    run = run_root / name
    if not (run / "checkpoints" / f"step-{steps}.pt").is_file():
        return False
    want = yaml.safe_load(
        to_yaml(load_config(config, [*overrides, f"name={name}", f"run_root={run_root}"]))
    )
    have = yaml.safe_load((run / "config.yaml").read_text())
    default = yaml.safe_load(to_yaml(load_config(None)))
    for c in (want, have, default):
        for key in ("train.progress", *(EVAL_ONLY if ignore_eval else ())):
            _drop(c, key)
    return _covers(have, want, default)


def _train_many(args: argparse.Namespace, runs: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Train ``runs`` (name → overrides): one after another in this process, or with ``--jobs`` > 1
    in that many ``semiasr train`` processes at once (``sweep.run_parallel``). With ``--reuse``, a
    finished run of the same config is read back instead of trained again."""
    from semiasr.config import load_config
    from sweep import run_parallel, summarise

    run_root = args.out_dir / "runs"
    reused = {
        n: o
        for n, o in runs.items()
        if args.reuse
        and _finished(args.config, o, run_root, n, args.steps, ignore_eval=bool(args.pick_split))
    }
    if reused:
        print(f"reusing finished runs: {', '.join(reused)}", flush=True)
    todo = {n: o for n, o in runs.items() if n not in reused}
    if args.jobs <= 1:
        out = {name: _train_one(args.config, o, run_root, name) for name, o in todo.items()}
        todo = {}
    else:
        out = {}
    left = args.deadline - (time.monotonic() - args.started)
    done = run_parallel(todo, args.config, run_root, args.jobs, args.threads, left) if todo else {}
    failed = [n for n, r in done.items() if r["exit_code"] not in (0, None, -signal.SIGTERM)]
    if failed:
        logs = ", ".join(str(run_root / f"{n}.log") for n in failed)
        raise SystemExit(f"optimizers.py: {len(failed)} training run(s) failed; see {logs}")
    done.update({n: summarise(run_root / n, o, None, 0) for n, o in reused.items()})
    for name, r in done.items():
        test = list(load_config(args.config, runs[name]).data.test)
        out[name] = {
            "run": r["run"],
            "valid_wer": r["final_valid_wer"],
            "final_loss": r["last_loss"],
            "curve": r["loss_curve"],
            "test_splits": test,
            "steps": r["steps"],
        }
    return out


def bench_train(args: argparse.Namespace) -> dict[str, Any]:
    out_dir: Path = args.out_dir
    lrs = {"adamw": args.adamw_lrs, "fadam": args.fadam_lrs}
    decay = {"adamw": args.adamw_weight_decay, "fadam": args.fadam_weight_decay}
    result: dict[str, Any] = {"mode": "train", "config": args.config, "steps": args.steps}
    result["overrides"] = list(args.overrides)

    def spec(opt: str, lr: float, seed: int) -> tuple[str, list[str]]:
        overrides = [
            *args.overrides,
            f"optim.name={opt}",
            f"optim.lr={lr}",
            f"optim.weight_decay={decay[opt]}",
            f"seed={seed}",
            f"train.max_steps={args.steps}",
        ]
        return f"{opt}-lr{lr:g}-seed{seed}", overrides

    opts = ("adamw", "fadam")
    grid_runs = dict(spec(opt, lr, args.seeds[0]) for opt in opts for lr in lrs[opt])
    grid_done = _train_many(args, grid_runs)
    picked = {}
    for opt in opts:
        grid = {f"{lr:g}": grid_done[spec(opt, lr, args.seeds[0])[0]] for lr in lrs[opt]}
        if args.pick_split:  # the whole split, decoded from the last checkpoint
            for r in grid.values():
                if r["run"] and any(Path(r["run"]).glob("checkpoints/step-*.pt")):
                    r["valid_wer"] = _test_wer(r["run"], [args.pick_split], args.decode_device)[
                        args.pick_split
                    ]
                else:
                    r["valid_wer"] = None
        picked[opt] = (grid, _pick(grid))
    seed_runs = dict(spec(opt, float(picked[opt][1]), s) for opt in opts for s in args.seeds[1:])
    seed_done = _train_many(args, seed_runs)
    for opt in opts:
        grid, best = picked[opt]
        seeds = {args.seeds[0]: grid[best]}
        seeds.update({s: seed_done[spec(opt, float(best), s)[0]] for s in args.seeds[1:]})
        # a run stopped by --deadline before its first checkpoint has nothing to decode
        seeds = {
            s: r
            for s, r in seeds.items()
            if r["run"] and any(Path(r["run"]).glob("checkpoints/step-*.pt"))
        }
        wers = {
            s: _test_wer(r["run"], r["test_splits"], args.decode_device) for s, r in seeds.items()
        }
        splits = next(iter(seeds.values()))["test_splits"] if seeds else []
        summary = {
            split: {
                "mean": statistics.mean(w[split] for w in wers.values()),
                "sd": statistics.stdev(w[split] for w in wers.values()) if len(wers) > 1 else 0.0,
                "n": len(wers),
            }
            for split in splits
        }
        result[opt] = {
            "weight_decay": decay[opt],
            "picked_on": args.pick_split or "in-training validation WER",
            "grid_valid_wer": {lr: r["valid_wer"] for lr, r in grid.items()},
            "picked_lr": float(best),
            "test_wer": {str(s): w for s, w in wers.items()},
            "test_wer_mean_sd": summary,
            "curves": {str(s): r["curve"] for s, r in seeds.items()},
            "steps_done": {str(s): r.get("steps", args.steps) for s, r in seeds.items()},
        }
    result["machine"] = machine()
    out_dir.mkdir(parents=True, exist_ok=True)
    _plot_curves(result, out_dir / "loss_curves.png")
    return result


def _plot_curves(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for opt, color in (("adamw", "tab:blue"), ("fadam", "tab:orange")):
        r = result[opt]
        for i, curve in enumerate(r["curves"].values()):
            if curve:
                steps, losses = zip(*curve)
                label = f"{opt} (lr {r['picked_lr']:g})" if i == 0 else None
                ax.plot(steps, losses, color=color, alpha=0.8, linewidth=1, label=label)
    ax.set_xlabel("update")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.set_title(f"{result['config']}: AdamW vs FAdam, {result['steps']} updates, each seed")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_train(result: dict[str, Any]) -> None:
    print(f"{'optimizer':<10}{'lr':>10}  test WER % (mean ± sd over seeds)")
    for opt in ("adamw", "fadam"):
        r = result[opt]
        wer = ", ".join(
            f"{s} {v['mean']:.2f} ± {v['sd']:.2f}" for s, v in r["test_wer_mean_sd"].items()
        )
        print(f"{opt:<10}{r['picked_lr']:>10g}  {wer}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    step = sub.add_parser("step", help="optimizer step time, FAdam vs AdamW")
    step.add_argument("--repeats", type=int, default=15)
    step.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    step.add_argument("--per-tensor", action="store_true", help="also time FAdam(foreach=False)")
    step.add_argument("--warmup", type=int, default=3)
    step.add_argument(
        "--shapes",
        choices=("transformer", "demo"),
        default="transformer",
        help="the 30M transformer-shaped set, or the demo model's parameters",
    )
    step.add_argument("--out", type=Path, default=Path("runs/bench/optimizers_step.json"))
    train = sub.add_parser("train", help="train the demo model with AdamW and FAdam")
    train.add_argument("--config", default="demo")
    train.add_argument("--steps", type=int, default=2000)
    train.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    train.add_argument("--adamw-lrs", type=float, nargs="+", default=[5e-4, 1e-3, 2e-3])
    train.add_argument("--fadam-lrs", type=float, nargs="+", default=[5e-4, 1e-3, 2e-3])
    train.add_argument("--adamw-weight-decay", type=float, default=1e-2)
    train.add_argument("--fadam-weight-decay", type=float, default=0.1)
    train.add_argument("--out-dir", type=Path, default=Path("runs/bench/optimizers_train"))
    train.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    train.add_argument(
        "--decode-device", default="cpu", help="where the test sets are decoded (cpu, cuda, auto)"
    )
    train.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS per process")
    train.add_argument(
        "--pick-split",
        default=None,
        help="pick each learning rate by the WER of this whole split (e.g. source_dev), decoded "
        "from the last checkpoint; default: the last in-training validation WER",
    )
    train.add_argument(
        "--reuse",
        action="store_true",
        help="read back finished runs of the same config under --out-dir instead of retraining",
    )
    train.add_argument(
        "--deadline", type=float, default=float("inf"), help="seconds; later runs are stopped"
    )
    train.add_argument("overrides", nargs="*", help="KEY=VALUE config overrides for every run")
    args = parser.parse_args(argv)
    if args.mode == "step":
        torch.set_num_threads(args.threads)
        result = bench_step(args.repeats, args.warmup, args.per_tensor, args.shapes)
        print_step(result)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
    elif args.mode == "train":
        args.started = time.monotonic()
        result = bench_train(args)
        print_train(result)
        (args.out_dir / "train.json").write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out_dir / 'train.json'} and {args.out_dir / 'loss_curves.png'}")


if __name__ == "__main__":
    main()
