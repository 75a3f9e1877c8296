"""Paired step time of two adaptation set-ups: one process, the same training batches, in turn.

Runs minutes apart in separate processes differ by up to ±20% on a shared machine, which hides a
cost of a few per cent. Here both set-ups of the same base run take a training step on each of the
same ``target_train`` batches, alternating which goes first. A step is the trainer's update:
forward, loss, backward, clipping of the gradient norm (``train.grad_clip``) and the base run's
optimizer (``optim``: AdamW's fused kernel where it applies, as ``semiasr adapt`` builds it). The model that steps second on a batch finds some per-shape set-up already done by the
first, so the medians are taken per order (A first, B first) and averaged; the report is each
one's step time so measured and their ratio B / A::

    python benchmarks/adapter_step_ab.py runs/demo13 --batches 60 \
        --a adapters bottleneck=64 \
        --b adapters bottleneck=64 adapter_conv_kernel=31 \
        --also-train 'encoder.layers.[123].**.*norm*' 'encoder.layers.[123].**.depthwise'

Options after the method are AdaptConfig fields (ints, floats and words as written). The first
``--warmup`` batches are not timed; one epoch of ``target_train`` at most (the demo's: 50 batches).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from semiasr.adapt import prepare_adaptation
from semiasr.data.loader import build_dataloader
from semiasr.objectives import objective_for
from semiasr.optim.build import build_optimizer
from semiasr.tasks.common import training_data_config
from semiasr.tasks.evaluate import load_trained


def parse_value(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def setup(run: Path, which: str, spec: list[str], also_train: list[str]):
    """(decoded run, model set up for ``spec`` = [method, key=value ...], the run's optimizer over
    its trainable parameters)."""
    method, *opts = spec
    kwargs = {}
    for opt in opts:
        key, sep, value = opt.partition("=")
        if not sep:
            raise SystemExit(f"adapter_step_ab.py: {opt!r} is not key=value")
        kwargs[key] = parse_value(value)
    dec = load_trained(run, which)
    model = dec.model.train()
    prepare_adaptation(model, method, also_train=also_train, **kwargs)
    return dec, model, build_optimizer(model, dec.cfg.optim)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("run", type=Path)
    ap.add_argument("--a", nargs="+", required=True, metavar="METHOD [KEY=VALUE ...]")
    ap.add_argument("--b", nargs="+", required=True, metavar="METHOD [KEY=VALUE ...]")
    ap.add_argument("--also-train", nargs="*", default=[], help="parameter globs, both set-ups")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--which", default="averaged", help="base checkpoint")
    args = ap.parse_args()
    if args.batches <= args.warmup:
        raise SystemExit("adapter_step_ab.py: --batches must exceed --warmup")
    torch.set_num_threads(args.threads)
    dec, model_a, opt_a = setup(args.run, args.which, args.a, args.also_train)
    _, model_b, opt_b = setup(args.run, args.which, args.b, args.also_train)
    loader = build_dataloader(
        training_data_config(dec.cfg),
        ["target_train"],
        dec.tokenizer,
        train=True,
        seed=0,
        feature_stats=dec.stats,
    )
    batches = [b for _, b in zip(range(args.batches), loader)]
    if len(batches) <= args.warmup:
        raise SystemExit(
            f"adapter_step_ab.py: {args.run}'s target_train gives {len(batches)} batches, "
            f"not more than --warmup {args.warmup}"
        )
    objective = objective_for(model_a)
    clip = float(dec.cfg.train.grad_clip)
    max_norm = clip if clip > 0 else math.inf

    def step(model, opt, batch) -> float:
        # as Trainer._micro_step and _update: the norm is clipped (and read) before the update
        t0 = time.perf_counter()
        objective(model, batch)[0].backward()
        params = [p for p in model.parameters() if p.grad is not None]
        float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    # times[first][name]: the steps of ``name`` on the batches where ``first`` stepped first. The
    # second model on a batch finds some per-shape set-up done by the first (oneDNN primitives of
    # the shared frozen layers), so each order is summarised on its own and the two averaged
    times: dict[str, dict[str, list[float]]] = {"a": {"a": [], "b": []}, "b": {"a": [], "b": []}}
    pair = {"a": (model_a, opt_a), "b": (model_b, opt_b)}
    for i, batch in enumerate(batches):
        first = "a" if i % 2 == 0 else "b"
        for name in (first, "b" if first == "a" else "a"):
            dt = step(*pair[name], batch)
            if i >= args.warmup:
                times[first][name].append(dt)
    if not all(times[f]["a"] for f in ("a", "b")):
        raise SystemExit("adapter_step_ab.py: need timed batches in both orders (2 or more)")

    def med(first: str, name: str) -> float:
        return statistics.median(times[first][name])

    a_s = (med("a", "a") + med("b", "a")) / 2
    b_s = (med("a", "b") + med("b", "b")) / 2
    result = {
        "a": args.a,
        "b": args.b,
        "also_train": args.also_train,
        "timed_batches": len(times["a"]["a"]) + len(times["b"]["a"]),
        "threads": args.threads,
        "optimizer": type(opt_a).__name__ + (" (fused)" if opt_a.defaults.get("fused") else ""),
        "grad_clip": clip,
        "a_median_s": a_s,
        "b_median_s": b_s,
        "b_over_a": b_s / a_s,
        "by_order": {
            f"{first} first": {"a_median_s": med(first, "a"), "b_median_s": med(first, "b")}
            for first in ("a", "b")
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
