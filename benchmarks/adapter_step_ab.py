"""Paired step time of two adaptation set-ups: one process, the same training batches, in turn.

Runs minutes apart in separate processes differ by up to ±20% on a shared machine, which hides a
cost of a few per cent. Here both set-ups of the same base run take a training step on each of the
same ``target_train`` batches, alternating which goes first. Each set-up is built as ``semiasr
adapt`` builds it (the adaptation config of the base run with the given overrides, the model
built from it, loaded from the base checkpoint and prepared from its ``adapt`` node, domain
routing for MDA), and a step is the trainer's update, with subnormal floats flushed to zero on a
CPU as ``Trainer.fit`` does: forward and loss under the run's precision, backward, clipping of the
gradient norm (``train.grad_clip``), the run's optimizer (``optim``: AdamW's fused kernel where it
applies) and its schedule. The batches are those of set-up A's config (``--set`` reaches both).

In a run of its own a model meets every new batch shape itself: oneDNN builds its convolution and
LSTM primitives for that shape, a few milliseconds a step. Stepping the same batch second, a model
would find them built by the other one, so the second model on a batch steps it with its padding
grown by ``--pad`` feature frames and one token column (the same utterances and lengths, so the
same loss to rounding; new shapes for that batch — ``shape_collisions`` counts the padded batches
whose (batch, frames) shape another timed batch has unpadded, which could still share primitives).
Each set-up so steps every timed batch (an even number: the last is dropped if needed), first on
half of them, second (padded) on the other half; the report is each one's median step time over
all of them and their ratio B / A, and the same for the mean step times (``b_over_a_mean``: what a
run costs; session 18 found the medians reading the SiLU adapter row 1–4% faster than the means).
(Until session 17 the second model stepped the very same batch and the medians were taken per
order, each over another half of the batches: the SiLU row read 1.535x so, 1.42-1.47x from each
model's steps as the first on a batch; ``docs/adaptation.md``.)::

    python benchmarks/adapter_step_ab.py runs/demo13 --batches 60 \
        --a adapters bottleneck=64 \
        --b adapters bottleneck=64 adapter_conv_kernel=31 \
        --also-train 'encoder.layers.[123].**.*norm*' 'encoder.layers.[123].**.depthwise'

Options after the method are AdaptConfig fields (``bottleneck=64``) or any other config override
(``adapt.also_train=[...]``, ``train.precision=fp32``, ``seed=1``); ``--set`` gives overrides to
both. The first ``--warmup`` batches are not timed; one epoch of ``target_train`` at most (the
demo's: 50 batches).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from semiasr.adapt import AdaptConfig
from semiasr.data.batch import Batch
from semiasr.data.loader import build_dataloader
from semiasr.malloc import malloc_state, tune_malloc
from semiasr.optim.build import build_optimizer
from semiasr.optim.schedules import build_scheduler
from semiasr.tasks.adapt import adaptation_config, adaptation_model
from semiasr.tasks.common import load_stats, load_tokenizer, training_data_config
from semiasr.tasks.evaluate import checkpoint_of
from semiasr.train.runtime import autocast, flush_denormal, resolve_precision

ADAPT_FIELDS = {f.name for f in dataclasses.fields(AdaptConfig)}


def overrides_of(spec: list[str], shared: list[str]) -> tuple[str, list[str]]:
    """(method, config overrides) of ``spec`` = [method, key=value ...]: a key that names an
    AdaptConfig field gets ``adapt.`` before it, any other is a config override as written;
    ``shared`` come first."""
    method, *opts = spec
    out = list(shared)
    for opt in opts:
        key, sep, _value = opt.partition("=")
        if not sep:
            raise SystemExit(f"adapter_step_ab.py: {opt!r} is not key=value")
        out.append(f"adapt.{opt}" if key in ADAPT_FIELDS else opt)
    return method, out


class Setup:
    """One set-up as ``semiasr adapt`` makes it: the adaptation config and, from it,
    ``semiasr.tasks.adapt.adaptation_model`` (the model loaded from the base checkpoint and
    prepared, its objective); the run's optimizer, schedule, clipping and precision."""

    def __init__(self, run: Path, which: str, method: str, overrides: list[str]):
        self.cfg = cfg = adaptation_config(run, method, "step-ab", overrides)
        if int(cfg.train.accum_steps) != 1:
            raise SystemExit("adapter_step_ab.py: times one batch per update (train.accum_steps=1)")
        self.tokenizer, self.stats = load_tokenizer(run), load_stats(run)
        self.model, self.objective = adaptation_model(
            cfg, checkpoint_of(run, which), self.tokenizer.vocab_size
        )
        self.model.train()
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.sched, int(cfg.train.max_steps))
        clip = float(cfg.train.grad_clip)
        self.max_norm = clip if clip > 0 else math.inf
        # the trainer clips its ObjectiveModule's parameters: the model's and the objective's
        extra = self.objective.parameters() if isinstance(self.objective, torch.nn.Module) else []
        self.parameters = [*self.model.parameters(), *extra]
        self.device = torch.device("cpu")
        self.precision = resolve_precision(str(cfg.train.precision), self.device)

    def step(self, batch: Any) -> float:
        """Seconds of one update, as Trainer._micro_step and _update make it."""
        t0 = time.perf_counter()
        with autocast(self.device, self.precision):
            loss = self.objective(self.model, batch)[0]
        loss.float().backward()
        params = [p for p in self.parameters if p.grad is not None]
        float(torch.nn.utils.clip_grad_norm_(params, self.max_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - t0


def own_shape(batch: Batch, frames: int) -> Batch:
    """``batch`` with ``frames`` more feature frames and one more token column of padding: the
    same utterances and lengths (the same loss, to rounding), every tensor of the batch in a new
    shape (after a 4x front end, ``frames`` = 4 is one more encoder frame)."""
    return dataclasses.replace(
        batch,
        features=torch.nn.functional.pad(batch.features, (0, 0, 0, frames)),
        tokens=torch.nn.functional.pad(batch.tokens, (0, 1)),
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("run", type=Path)
    ap.add_argument("--a", nargs="+", required=True, metavar="METHOD [KEY=VALUE ...]")
    ap.add_argument("--b", nargs="+", required=True, metavar="METHOD [KEY=VALUE ...]")
    ap.add_argument("--also-train", nargs="*", default=[], help="parameter globs, both set-ups")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="both set-ups")
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--pad", type=int, default=4, help="feature frames of padding added for the second model"
    )
    ap.add_argument("--which", default="averaged", help="base checkpoint")
    ap.add_argument(
        "--loss-every-cell",
        action="store_true",
        help="the fused loss's CPU backward over every lattice cell, as before session 23 (to "
        "attribute a change of the ratio to the occupancy threshold or to the machine's hour)",
    )
    args = ap.parse_args()
    if args.loss_every_cell:
        from semiasr.semiring import joint

        joint._SKIP_OCCUPANCY = joint.EVERY_CELL
    if args.batches <= args.warmup:
        raise SystemExit("adapter_step_ab.py: --batches must exceed --warmup")
    tune_malloc()  # as the ``semiasr`` command does (SEMIASR_MALLOC=system: glibc's defaults)
    torch.set_num_threads(args.threads)
    shared = list(args.set)
    if args.also_train:
        shared.append(f"adapt.also_train={json.dumps(args.also_train)}")
    setups = {
        name: Setup(args.run, args.which, *overrides_of(spec, shared))
        for name, spec in (("a", args.a), ("b", args.b))
    }
    first = setups["a"]
    loader = build_dataloader(
        training_data_config(first.cfg),
        ["target_train"],
        first.tokenizer,
        train=True,
        seed=0,
        feature_stats=first.stats,
    )
    batches = [b for _, b in zip(range(args.batches), loader)]
    if (len(batches) - args.warmup) % 2:
        batches.pop()  # as many timed batches led by each set-up
    if len(batches) <= args.warmup:
        raise SystemExit(
            f"adapter_step_ab.py: {args.run}'s target_train gives {len(batches)} batches, "
            f"not more than --warmup {args.warmup}"
        )

    # times[first][name]: the steps of ``name`` on the batches where ``first`` stepped first; the
    # second model on a batch steps it padded (``own_shape``), so it meets new shapes as in a run
    times: dict[str, dict[str, list[float]]] = {"a": {"a": [], "b": []}, "b": {"a": [], "b": []}}
    # subnormals flushed to zero while timing, as Trainer.fit does on a CPU (they slow the RNN-T
    # backward's matrix products several times)
    with flush_denormal():
        for i, batch in enumerate(batches):
            lead = "a" if i % 2 == 0 else "b"
            second = "b" if lead == "a" else "a"
            for name, b in ((lead, batch), (second, own_shape(batch, args.pad))):
                dt = setups[name].step(b)
                if i >= args.warmup:
                    times[lead][name].append(dt)
    if not all(times[f]["a"] for f in ("a", "b")):
        raise SystemExit("adapter_step_ab.py: need timed batches in both orders (2 or more)")

    def med(first: str, name: str) -> float:
        return statistics.median(times[first][name])

    timed = batches[args.warmup :]
    plain = {(int(b.features.shape[0]), int(b.features.shape[1])) for b in timed}
    padded = [(int(b.features.shape[0]), int(b.features.shape[1]) + args.pad) for b in timed]
    a_all, b_all = times["a"]["a"] + times["b"]["a"], times["a"]["b"] + times["b"]["b"]
    a_s, b_s = statistics.median(a_all), statistics.median(b_all)
    opt = setups["a"].optimizer
    result = {
        "a": args.a,
        "b": args.b,
        "also_train": args.also_train,
        "set": args.set,
        "timed_batches": len(times["a"]["a"]) + len(times["b"]["a"]),
        "threads": args.threads,
        "optimizer": type(opt).__name__ + (" (fused)" if opt.defaults.get("fused") else ""),
        "grad_clip": setups["a"].max_norm,
        "precision": setups["a"].precision,
        "flush_denormal": True,
        "loss_every_cell": args.loss_every_cell,
        "malloc": malloc_state(),
        "second_pad_frames": args.pad,
        "shape_collisions": sum(shape in plain for shape in padded),
        "a_median_s": a_s,
        "b_median_s": b_s,
        "b_over_a": b_s / a_s,
        # what a run costs is the mean step: the medians read a smaller model's speed-up 1-4% high
        # here (session 18, docs/adaptation.md)
        "a_mean_s": statistics.mean(a_all),
        "b_mean_s": statistics.mean(b_all),
        "b_over_a_mean": statistics.mean(b_all) / statistics.mean(a_all),
        "by_order": {
            f"{first} first": {"a_median_s": med(first, "a"), "b_median_s": med(first, "b")}
            for first in ("a", "b")
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
