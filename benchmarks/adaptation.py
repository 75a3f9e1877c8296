"""The adaptation table of docs/adaptation.md, measured on the built-in corpus.

From a trained source-domain run (the demo's), each method adapts for the same number of updates on
``target_train`` with the same optimizer settings; then the table reports per method: trainable
parameters as % of the encoder, activation memory autograd keeps for one real training batch, step
time (the trainer's ``compute_s``: forward, loss, backward and update, seconds per update; the
speed-up is full fine-tuning's over the row's), target dev, target test and source test WER after
adaptation (greedy, last checkpoint). With ``--lrs`` and
``--scheds``, each ``--grid`` method trains at every rate under every schedule (``constant``, or
``cosine``: linear warm-up over the first 10% of the updates, then cosine decay to 2% of the rate)
and keeps the combination with the lowest target_dev WER (the test sets choose nothing); the other
methods train at ``--lr`` under the first of ``--scheds``. ``--variant LABEL METHOD KEY=VALUE ...`` adds a row: METHOD
with those overrides (searched like METHOD)::

    python benchmarks/adaptation.py runs/demo --steps 300 --lrs 0.001 0.003 \
        --scheds constant cosine --variant "adapters r=64 +norms" adapters adapt.bottleneck=64 \
        'adapt.also_train=[encoder.**.*norm*]' --out runs/adapt-bench

Every adaptation runs in its own Python process (one after another), so that no row inherits
another's state; "step s" is the trainer's ``compute_s`` (forward, backward and update, without
waiting for the loader), and the JSON also keeps ``data_s`` and the wall clock per update.

Separate runs minutes apart differ by up to ±20% on a shared machine, so ``--paired N`` adds a
steadier column after the runs: N calls of ``benchmarks/adapter_step_ab.py`` per trained row, each
a fresh process in which full fine-tuning and the row take the trainer's update on the same
``target_train`` batches in turn (the second on a batch padded to new shapes); the column is the
mean of full's step over the row's (the range and every call in the JSON). ``--paired-only`` adds
that column to the table already in ``--out`` and trains nothing::

    python benchmarks/adaptation.py runs/demo13 --paired 3 --paired-only --out runs/adapt-table15
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from semiasr.adapt import DomainRoutedObjective, summary_rows
from semiasr.adapt.bench import saved_activation_bytes
from semiasr.data.loader import build_dataloader
from semiasr.eval import evaluate
from semiasr.malloc import malloc_state, tune_malloc
from semiasr.objectives import objective_for
from semiasr.tasks.adapt import adapt, adaptation_config
from semiasr.tasks.common import training_data_config
from semiasr.tasks.evaluate import decode_split, load_trained

ROW = "ADAPTATION-ROW "
METHODS = ["none", "full", "decoder", "adapters", "lora", "mda", "hff", "hff+adapters"]


def trainable_share(model: torch.nn.Module) -> tuple[int, float]:
    """(trainable parameters, trainable encoder-side parameters as % of the base encoder)."""
    parts = {r.part: r for r in summary_rows(model)}
    enc_side = [r for p, r in parts.items() if p in ("encoder", "fusion") or "[encoder]" in p]
    total = sum(r.trainable for r in parts.values())
    return total, 100.0 * sum(r.trainable for r in enc_side) / parts["encoder"].total


def activation_mib(run: Path, method: str) -> float:
    """Autograd's saved bytes for the first training batch of target_train under ``method``
    (the training loader of the run, seed 0: shuffled and augmented as the run saw it)."""
    dec = load_trained(run, "last")
    model = dec.model.train()
    loader = build_dataloader(
        training_data_config(dec.cfg),
        ["target_train"],
        dec.tokenizer,
        train=True,
        seed=0,
        feature_stats=dec.stats,
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


def step_times(run: Path, fallback: float) -> dict[str, float]:
    """Seconds per update from the run's training metrics: ``step_s``, forward + backward + update
    (the trainer's ``compute_s``, averaged over the logged windows after the first); ``data_s``, waiting for the
    loader; ``wall_step_s``, wall clock between the first and the last logged update (start-up,
    the first batch and the final checkpoint left out). ``fallback`` where nothing was logged."""
    path = run / "metrics.jsonl"
    recs = [json.loads(x) for x in path.read_text().splitlines() if x] if path.is_file() else []
    recs = [r for r in recs if r.get("split") == "train" and "time" in r]
    nan = float("nan")
    wall = (
        (recs[-1]["time"] - recs[0]["time"]) / (recs[-1]["step"] - recs[0]["step"])
        if len(recs) >= 2 and recs[-1]["step"] > recs[0]["step"]
        else nan
    )
    # the first window holds the start-up (first batches, lazy initialisation, kernel caches),
    # a fixed cost that would weigh more on the faster methods: left out where there are more
    timed = [r for r in recs if "compute_s" in r]
    timed = timed[1:] if len(timed) > 1 else timed
    if not timed:  # nothing logged, or a run from before the trainer split its time
        step = wall if wall == wall else fallback
        return {"step_s": step, "data_s": nan, "wall_step_s": wall}
    return {
        "step_s": sum(r["compute_s"] for r in timed) / len(timed),
        "data_s": sum(r["data_s"] for r in timed) / len(timed),
        "wall_step_s": wall,
    }


def median(values: list[float]) -> float:
    """The median of the values that are not NaN (NaN when none is)."""
    kept = [v for v in values if v == v]
    return statistics.median(kept) if kept else float("nan")


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


def max_rss_mib() -> float:
    """This process's peak resident memory in MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    import resource  # not on Windows, where the benchmark does not run

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20 if sys.platform == "darwin" else 1 << 10)


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
        "run": str(run),
        "overrides": list(extra),
        "sched": sched if method != "none" else None,
        "lr": lr if method != "none" else None,
        "trainable": trainable,
        "trainable_encoder_pct": pct,
        "activation_MiB": activation_mib(run, method) if method != "none" else float("nan"),
        **(
            step_times(run, train_s / steps)
            if steps
            else {"step_s": float("nan"), "data_s": float("nan"), "wall_step_s": float("nan")}
        ),
        **{f"{k}_wer": v for k, v in wers(run, args.which if method == "none" else "last").items()},
        "seconds": time.perf_counter() - t0,
        "malloc": malloc_state(),
        # this process's peak resident memory (it adapts one row: training and its evaluations)
        "max_rss_MiB": max_rss_mib(),
    }


def adapt_isolated(args: argparse.Namespace, *call: object) -> dict:
    """``adapt_once(args, *call)`` in a fresh Python process, as ``semiasr adapt`` would run it.

    Each run gets its own process so that none inherits another's allocator state, threads or
    oneDNN primitive cache. Runs made one after another in one process (session 4), or interleaved
    batch by batch in it (a probe), gave other speed ratios than runs on their own."""
    job = {
        "base_run": str(args.base_run),
        "steps": args.steps,
        "out": str(args.out),
        "set": list(args.set),
        "which": args.which,
        "call": list(call),
    }
    proc = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(job)],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    rows = [x[len(ROW) :] for x in proc.stdout.splitlines() if x.startswith(ROW)]
    if proc.returncode or not rows:
        raise SystemExit(f"adaptation.py: {call} failed (exit status {proc.returncode})")
    return json.loads(rows[-1])


def run_one(job_json: str) -> None:
    """The child of :func:`adapt_isolated`: one adaptation, its row printed after ``ROW``; glibc's
    malloc tuned first (unless ``SEMIASR_MALLOC=system``), as the ``semiasr`` command does
    (``semiasr.malloc``)."""
    tune_malloc()
    job = json.loads(job_json)
    args = argparse.Namespace(
        base_run=Path(job["base_run"]),
        steps=job["steps"],
        out=Path(job["out"]),
        set=job["set"],
        which=job["which"],
    )
    method, lr, sched, extra, label = job["call"]
    print(ROW + json.dumps(adapt_once(args, method, lr, sched, tuple(extra), label)), flush=True)


def paired_speedups(args: argparse.Namespace, row: dict) -> list[float]:
    """Full fine-tuning's step time over ``row``'s, ``args.paired`` times: each a fresh process of
    benchmarks/adapter_step_ab.py (the trainer's update of both set-ups, in turn on each
    ``target_train`` batch, the second one padded so that both meet new shapes; the row's
    overrides and ``--set`` as its runs had them)."""
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("adapter_step_ab.py")),
        str(args.base_run),
        "--which",
        args.which,
        "--batches",
        str(args.paired_batches),
        "--warmup",
        str(args.paired_warmup),
        "--set",
        *args.set,
        "--a",
        "full",
        "--b",
        row["method"],
        *row["overrides"],
    ]
    ratios = []
    for _ in range(args.paired):
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"exit status {proc.returncode}: {shlex.join(cmd)}")
        ratios.append(1.0 / json.loads(proc.stdout)["b_over_a"])
        print(f"paired {row['label']}: {ratios[-1]:.3f}x", flush=True)
    return ratios


def add_paired(args: argparse.Namespace, rows: list[dict], save: Callable[[], None]) -> None:
    """``paired_speedup`` (mean) and ``paired_speedup_runs`` of every trained row but full's,
    ``save()`` after each row; a row whose timing fails keeps its error (``paired_error``) and
    the others go on."""
    failed = []
    for row in rows:
        if row["method"] in ("none", "full"):
            continue
        try:
            row["paired_speedup_runs"] = runs = paired_speedups(args, row)
        except RuntimeError as e:
            row["paired_error"] = str(e)
            failed.append(row["label"])
            print(f"adaptation.py: paired timing of {row['label']!r} failed: {e}", flush=True)
            continue
        row["paired_speedup"] = statistics.mean(runs)
        save()
    save()
    if failed:
        raise SystemExit(f"adaptation.py: paired timing failed for {failed} (see paired_error)")


def cell(x: float, fmt: str = ".1f") -> str:
    """A table cell: the number, or a dash for NaN."""
    return "–" if x != x else format(x, fmt)


def render(rows: list[dict]) -> str:
    """The markdown table of the chosen rows."""
    full = next((r for r in rows if r["label"] == "full"), None)
    paired = any("paired_speedup" in r for r in rows)
    lines = [
        "| method | lr, schedule | trainable params | % of encoder | activation MiB "
        "| step s | speed-up vs full "
        + ("| paired speed-up (range) " if paired else "")
        + "| target dev WER % | target WER % | source WER % |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | "
        + ("---: | " if paired else "")
        + "---: | ---: | ---: |",
    ]
    for r in rows:
        ratio = r.get("speedup", float("nan"))
        speedup = f"{ratio:.2f}×" if full and ratio == ratio else "–"
        if paired:
            runs = r.get("paired_speedup_runs", [])
            speedup += (
                f" | {r['paired_speedup']:.2f}× ({min(runs):.2f}–{max(runs):.2f})"
                if runs
                else " | –"
            )
        lr = f"{r['lr']:g}, {r['sched']}" if r["lr"] else "–"
        if r["lr"] and not r.get("searched", True):
            lr += " (not searched)"
        lines.append(
            f"| {r['label']} | {lr} | {r['trainable']:,} | {r['trainable_encoder_pct']:.2f} "
            f"| {cell(r['activation_MiB'])} | {cell(r['step_s'], '.3f')} | {speedup} "
            f"| {r['target_dev_wer']:.2f} | {r['target_test_wer']:.2f} | {r['source_test_wer']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        return run_one(sys.argv[2])
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
    ap.add_argument(
        "--paired",
        type=int,
        default=0,
        metavar="N",
        help="N paired step-time calls per trained row against full fine-tuning, after the runs",
    )
    ap.add_argument("--paired-batches", type=int, default=60, help="batches per paired call")
    ap.add_argument("--paired-warmup", type=int, default=5, help="untimed batches per call")
    ap.add_argument(
        "--paired-only",
        action="store_true",
        help="add the paired column to --out's adaptation.json (and .md); train nothing",
    )
    args = ap.parse_args()
    if args.paired_only:
        if args.paired < 1:
            raise SystemExit("adaptation.py: --paired-only needs --paired N (1 or more)")
        path = args.out / "adaptation.json"
        if not path.is_file():
            raise SystemExit(f"adaptation.py: --paired-only: {path} does not exist")
        doc = json.loads(path.read_text())
        for key, mine in (("base_run", str(args.base_run)), ("which", args.which)):
            if key in doc and doc[key] != mine:
                raise SystemExit(
                    f"adaptation.py: {path} was measured with {key} {doc[key]!r}, not {mine!r}"
                )
        args.set = doc.get("set", [])
        doc["paired_batches"] = args.paired_batches

        def save_paired() -> None:
            path.write_text(json.dumps(doc, indent=2) + "\n")
            (args.out / "adaptation.md").write_text(render(doc["rows"]) + "\n")

        add_paired(args, doc["rows"], save_paired)
        print(render(doc["rows"]))
        return
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
    labels = [label for label, _, _ in todo]
    if not labels:
        raise SystemExit("adaptation.py: nothing to run (no --methods and no --variant)")
    if len(set(labels)) < len(labels):
        raise SystemExit(f"adaptation.py: row labels must differ, got {labels}")
    jobs: list[list[tuple]] = []
    for label, method, extra in todo:
        searched = method in args.grid
        lrs = args.lrs if args.lrs and searched else [args.lr]
        scheds = args.scheds if searched else args.scheds[:1]
        combos = [(lr, sc) for lr in lrs for sc in scheds] if method != "none" else [(None, "")]
        jobs.append([(method, lr, sc, extra, label) for lr, sc in combos])
    # round robin over the rows (full's first rate, adapters' first rate, …, full's second rate,
    # …) so that a slow spell of the machine falls on every row alike; each finished run is
    # appended to runs.jsonl at once, so a failure later loses nothing
    args.out.mkdir(parents=True, exist_ok=True)
    done = args.out / "runs.jsonl"
    done.write_text("")
    results: dict[tuple[int, int], dict] = {}
    for k in range(max(len(j) for j in jobs)):
        for i, grid_jobs in enumerate(jobs):
            if k < len(grid_jobs):
                results[i, k] = r = adapt_isolated(args, *grid_jobs[k])
                print(json.dumps(r), flush=True)
                with done.open("a") as f:
                    f.write(json.dumps(r) + "\n")
    for i, grid_jobs in enumerate(jobs):
        grid = [results[i, k] for k in range(len(grid_jobs))]
        tried += grid
        best = dict(min(grid, key=lambda r: r["target_dev_wer"]))
        best["searched"] = len(grid) > 1  # a rate picked on target_dev, or the one --lr
        # the rates do not change the work of a step: medians over the grid's runs
        for key in ("step_s", "data_s", "wall_step_s"):
            best[key] = median([r[key] for r in grid])
        best["step_s_runs"] = [r["step_s"] for r in grid]
        rows.append(best)
    # speed-up against full fine-tuning, run by run: each of a row's runs against full's run of
    # the same round of the round robin (the same rate for grid rows; a row of one run meets
    # full's first), so that a slow or fast spell of the machine divides out; the median of those
    full_i = next((i for i, (label, _, _) in enumerate(todo) if label == "full"), None)
    for i, row in enumerate(rows):
        if full_i is None:
            row["speedup"] = float("nan")
            continue
        row["speedup_runs"] = [
            results[full_i, k]["step_s"] / results[i, k]["step_s"]
            for k in range(len(jobs[i]))
            if (full_i, k) in results and results[i, k]["step_s"] == results[i, k]["step_s"]
        ]
        row["speedup"] = median(row["speedup_runs"])
    result = {
        "base_run": str(args.base_run),
        "which": args.which,
        "steps": args.steps,
        "set": args.set,
        "scheds": args.scheds,
        "variants": args.variant,
        "paired_batches": args.paired_batches if args.paired > 0 else None,
        "rows": rows,
        "tried": tried,
    }

    def save() -> None:  # the table as it stands; again after each row's paired calls
        (args.out / "adaptation.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "adaptation.md").write_text(render(rows) + "\n")

    save()
    if args.paired > 0:
        add_paired(args, rows, save)
    print(render(rows))


if __name__ == "__main__":
    main()
