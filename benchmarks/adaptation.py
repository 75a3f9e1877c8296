"""The adaptation table of docs/adaptation.md, measured on the built-in corpus.

From a trained source-domain run (the demo's), each method adapts for the same number of updates on
``target_train`` with the same optimizer settings; then the table reports per method: trainable
parameters as % of the encoder, activation memory autograd keeps for one real training batch, step
time (seconds per update between the first and last logged steps of the adaptation run, relative to
full fine-tuning), target dev, target
test and source test WER after adaptation (greedy, last checkpoint). With ``--lrs`` and
``--scheds``, each ``--grid`` method trains at every rate under every schedule (``constant``, or
``cosine``: linear warm-up over the first 10% of the updates, then cosine decay to 2% of the rate)
and keeps the combination with the lowest target_dev WER (the test sets choose nothing); the other
methods train at ``--lr`` under the first of ``--scheds``. ``--variant LABEL METHOD KEY=VALUE ...`` adds a row: METHOD
with those overrides (searched like METHOD)::

    python benchmarks/adaptation.py runs/demo --steps 300 --lrs 0.001 0.003 \
        --scheds constant cosine --variant "adapters r=64 +norms" adapters adapt.bottleneck=64 \
        'adapt.also_train=[encoder.**.*norm*]' --out runs/adapt-bench

Methods run one after another in this process; the rows share the machine equally.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch

from semiasr.adapt import DomainRoutedObjective, summary_rows
from semiasr.adapt.bench import saved_activation_bytes
from semiasr.data.loader import build_dataloader
from semiasr.eval import evaluate
from semiasr.objectives import objective_for
from semiasr.tasks.adapt import adapt, adaptation_config
from semiasr.tasks.evaluate import decode_split, load_trained

METHODS = ["none", "full", "decoder", "adapters", "lora", "mda", "hff", "hff+adapters"]


def trainable_share(model: torch.nn.Module) -> tuple[int, float]:
    """(trainable parameters, trainable encoder-side parameters as % of the base encoder)."""
    parts = {r.part: r for r in summary_rows(model)}
    enc_side = [r for p, r in parts.items() if p in ("encoder", "fusion") or "[encoder]" in p]
    total = sum(r.trainable for r in parts.values())
    return total, 100.0 * sum(r.trainable for r in enc_side) / parts["encoder"].total


def activation_mib(run: Path, method: str) -> float:
    """Autograd's saved bytes for the first target_train batch under ``method``."""
    dec = load_trained(run, "last")
    model = dec.model.train()
    loader = build_dataloader(
        dec.cfg.data, ["target_train"], dec.tokenizer, train=False, feature_stats=dec.stats
    )
    batch = next(iter(loader))
    objective = objective_for(model)
    if method == "mda":
        objective = DomainRoutedObjective(objective)
    return saved_activation_bytes(model, lambda: objective(model, batch)[0]) / 2**20


def wers(run: Path, which: str = "last") -> dict[str, float]:
    dec = load_trained(run, which)
    return {
        split: evaluate(decode_split(dec, split)[0]).wer
        for split in ("target_dev", "target_test", "source_test")
    }


def steady_step_s(run: Path, fallback: float) -> float:
    """Seconds per update between the first and the last logged training step (the metrics'
    wall-clock stamps), so start-up, the first batch and the final checkpoint are left out; every
    method sees the same batches in the same order. ``fallback`` where fewer than two stamps."""
    path = run / "metrics.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines() if x] if path.is_file() else []
    recs = [r for r in recs if r.get("split") == "train" and "time" in r]
    if len(recs) < 2 or recs[-1]["step"] <= recs[0]["step"]:
        return fallback
    return (recs[-1]["time"] - recs[0]["time"]) / (recs[-1]["step"] - recs[0]["step"])


def schedule(name: str, steps: int) -> list[str]:
    """Overrides for a ``--scheds`` entry."""
    if name == "constant":
        return ["sched.name=constant", "sched.warmup_steps=0"]
    if name == "cosine":
        return [
            "sched.name=cosine",
            f"sched.warmup_steps={max(1, steps // 10)}",
            "sched.min_lr_ratio=0.02",
        ]
    raise SystemExit(f"adaptation.py: unknown schedule {name!r} (constant, cosine)")


def adapt_once(
    args: argparse.Namespace,
    method: str,
    lr: float | None,
    sched: str = "constant",
    extra: tuple[str, ...] = (),
    label: str | None = None,
) -> dict:
    """Adapt the base run with ``method`` (and ``extra`` overrides) at learning rate ``lr`` under
    schedule ``sched``; the row of the table."""
    t0 = time.perf_counter()
    label = label or method
    if method == "none":
        run, steps, train_s, trainable, pct = args.base_run, 0, 0.0, 0, 0.0
    else:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")
        name = f"{args.base_run.name}-{slug}-lr{lr:g}" + (
            "" if sched == "constant" else f"-{sched}"
        )
        cfg = adaptation_config(
            args.base_run,
            method,
            name,
            [
                f"run_root={args.out}",
                f"train.max_steps={args.steps}",
                f"train.eval_every={10 * args.steps}",
                f"train.ckpt_every={args.steps}",
                f"optim.lr={lr}",
                *schedule(sched, args.steps),
                "train.progress=false",
                *args.set,
                *extra,
            ],
        )
        run_dir, summary = adapt(cfg, mode="overwrite", which=args.which, progress=False)
        run, steps, train_s = run_dir.path, summary.steps, summary.wall_time_s
        trainable, pct = trainable_share(load_trained(run, "last").model)
    return {
        "method": method,
        "label": label,
        "overrides": list(extra),
        "sched": sched if method != "none" else None,
        "lr": lr if method != "none" else None,
        "trainable": trainable,
        "trainable_encoder_pct": pct,
        "activation_MiB": activation_mib(run, method) if method != "none" else float("nan"),
        "step_s": steady_step_s(run, train_s / steps) if steps else float("nan"),
        **{f"{k}_wer": v for k, v in wers(run, args.which if method == "none" else "last").items()},
        "seconds": time.perf_counter() - t0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("base_run", type=Path)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3, help="learning rate of every method")
    ap.add_argument(
        "--lrs",
        type=float,
        nargs="*",
        default=[],
        help="a grid for the --grid methods instead; each picks its rate by target_dev WER",
    )
    ap.add_argument(
        "--scheds",
        nargs="*",
        default=["constant"],
        help="schedules for the --grid methods: constant, cosine",
    )
    ap.add_argument("--grid", nargs="*", default=["full", "adapters", "hff+adapters"])
    ap.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar="LABEL METHOD [KEY=VALUE ...]",
        help="an extra row: METHOD with these overrides; repeatable",
    )
    ap.add_argument("--methods", nargs="*", default=METHODS)
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="more config overrides for every method, e.g. adapt.bottleneck=64",
    )
    ap.add_argument("--out", type=Path, default=Path("runs/adapt-bench"))
    ap.add_argument(
        "--which", default="averaged", help="base checkpoint: averaged (else last), last, best"
    )
    args = ap.parse_args()
    if not args.scheds:
        raise SystemExit("adaptation.py: --scheds needs at least one schedule")
    for sc in args.scheds:
        schedule(sc, args.steps)  # unknown names stop here, before anything trains
    rows, tried = [], []
    todo = [(m, m, ()) for m in args.methods]
    for v in args.variant:
        if len(v) < 2 or v[1] not in METHODS:
            raise SystemExit(f"adaptation.py: --variant {v}: needs LABEL METHOD (one of {METHODS})")
        todo.append((v[0], v[1], tuple(v[2:])))
    for label, method, extra in todo:
        searched = method in args.grid
        lrs = args.lrs if args.lrs and searched else [args.lr]
        scheds = args.scheds if searched else args.scheds[:1]
        combos = [(lr, sc) for lr in lrs for sc in scheds] if method != "none" else [(None, "")]
        grid = [adapt_once(args, method, lr, sc, extra, label) for lr, sc in combos]
        for r in grid:
            print(json.dumps(r), flush=True)
        tried += grid
        rows.append(min(grid, key=lambda r: r["target_dev_wer"]))
    full = next((r for r in rows if r["label"] == "full"), None)
    lines = [
        "| method | lr, schedule | trainable params | % of encoder | activation MiB "
        "| step s (× full) | target dev WER % | target WER % | source WER % |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        ratio = (
            f" ({r['step_s'] / full['step_s']:.2f}×)" if full and r["step_s"] == r["step_s"] else ""
        )
        lr = f"{r['lr']:g}, {r['sched']}" if r["lr"] else "–"
        lines.append(
            f"| {r['label']} | {lr} | {r['trainable']:,} | {r['trainable_encoder_pct']:.2f} "
            f"| {r['activation_MiB']:.1f} | {r['step_s']:.3f}{ratio} | {r['target_dev_wer']:.2f} "
            f"| {r['target_test_wer']:.2f} | {r['source_test_wer']:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "steps": args.steps,
        "set": args.set,
        "scheds": args.scheds,
        "variants": args.variant,
        "rows": rows,
        "tried": tried,
    }
    (args.out / "adaptation.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "adaptation.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
