"""The transducer's joiner + RNN-T loss, forward and backward: the blocked pass against the logits.

Three ways to get −log P(y | x) and its gradients w.r.t. the joiner's inputs and weights, side by
side on the same tensors:

* ``logits``: ``rnnt_loss(joiner(enc, pred))`` — the joiner's (B, T, U+1, V) logits materialised,
  then semiasr's loss (one read of the logits, the gradient written into one buffer; the way
  torchaudio's ``rnnt_loss`` and most toolkits are used);
* ``logits, no flush``: the same with the flush of subnormal gradient entries switched off (what it
  was before 2026-11-27);
* ``blocked, torch pass``: ``rnnt_joiner_loss`` (:mod:`semiasr.semiring.joint`) as it ran until
  2026-11-28 — the joiner and the loss in cache-sized blocks of the lattice in vectorised torch (α-β
  in numba), nothing of size B·T·(U+1) kept but the (B, T, U+1) tables; still the pass on GPUs;
* ``blocked, torch pass, no flush``: the same without the flush;
* ``blocked, CPU pass, every cell``: ``rnnt_joiner_loss``'s CPU pass as it ran until session 23
  (2026-11-28) — matrix products and exp in torch, tanh and every per-row step in numba kernels,
  h and exp(logits) kept for the backward, the backward over every lattice cell;
* ``blocked, CPU pass``: as it runs on a CPU now — the backward only over the cells whose
  occupancy is above 1e-12 in float32 (``joint._SKIP_OCCUPANCY``).

Before timing, the loss and the gradients w.r.t. the encoder and prediction outputs of every
method are checked against ``logits`` on the first input.

Inputs: with ``--run`` (a transducer run, e.g. ``runs/demo``), the encoder and prediction-network
outputs of ``--batches`` real training batches of its corpus (``--split``), through its own joiner —
a trained joiner's peaked softmax is what makes the gradient subnormal; without it, random tensors of
``--shape B T U`` through a random joiner (``--vocab``, J = 128) whose output layer is scaled by
``--sharpness`` to make the softmax peaked like a trained one.

Each repeat runs every method once per input, interleaved (one method after another per input),
and the median over repeats of the summed time is reported, with the ratio to ``logits``. "saved
MiB" is what autograd keeps for the backward of the first input (tensors saved by the joiner and
the loss, counted once per storage): the memory the method needs between forward and backward.
It also reports how many of the lattice cells the CPU pass's backward computed (those of each
frame from the first to the last with occupancy above the threshold).

    python benchmarks/joiner_loss.py --run runs/demo --threads 2 --json runs/bench/joiner_loss.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from semiasr import functional as F
from semiasr.adapt.bench import saved_activation_bytes
from semiasr.nn import Joiner
from semiasr.semiring import fast, joint

METHODS = (
    "logits",
    "logits, no flush",
    "blocked, torch pass",
    "blocked, torch pass, no flush",
    "blocked, CPU pass, every cell",
    "blocked, CPU pass",
)
_FLUSH = fast.flush_subnormal_
_SKIP = joint._SKIP_OCCUPANCY


def _real_inputs(run: Path, split: str, n: int):
    from semiasr.config import as_object, load_config
    from semiasr.data.loader import build_dataloader
    from semiasr.models.build import build_model
    from semiasr.tasks.common import load_stats, load_tokenizer
    from semiasr.tasks.evaluate import checkpoint_of
    from semiasr.train.checkpoint import load_checkpoint, load_model_state, model_state_of

    cfg = as_object(load_config(run / "config.yaml"))
    tok, stats = load_tokenizer(run), load_stats(run)
    model = build_model(cfg.model, tok.vocab_size, cfg.data.features.num_mel_bins)
    ck = checkpoint_of(run, "last")
    load_model_state(model, model_state_of(load_checkpoint(ck), str(ck)), str(ck))
    model.eval()
    loader = build_dataloader(cfg.data, [split], tok, train=True, seed=0, feature_stats=stats)
    inputs = []
    with torch.no_grad():
        for batch in loader:
            enc = model.encode(batch.features, batch.feature_lengths)
            pred = model.predict(batch.tokens)
            inputs.append((enc.frames, pred, batch.tokens, enc.lengths, batch.token_lengths))
            if len(inputs) == n:
                break
    return model.joiner, inputs


def _random_inputs(shape: list[int], vocab: int, sharpness: float, n: int):
    bsz, t_max, u_max = shape
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    joiner = Joiner(128, 128, 128, vocab)
    with torch.no_grad():
        joiner.output.weight.mul_(sharpness)
    inputs = []
    for _ in range(n):
        enc = torch.randn(bsz, t_max, 128, generator=g)
        pred = torch.randn(bsz, u_max + 1, 128, generator=g)
        tokens = torch.randint(1, vocab, (bsz, u_max), generator=g)
        t_len = torch.randint(t_max // 2, t_max + 1, (bsz,), generator=g)
        u_len = torch.randint(u_max // 2, u_max + 1, (bsz,), generator=g)
        t_len[0], u_len[0] = t_max, u_max
        inputs.append((enc, pred, tokens, t_len, u_len))
    return joiner, inputs


def _loss_fn(method: str, joiner: Joiner, enc, pred, tokens, t_len, u_len):
    args = (tokens.int(), t_len.int(), u_len.int())
    if method.startswith("blocked"):
        return F.rnnt_joiner_loss(
            joiner.project_encoder(enc),
            joiner.project_predictor(pred),
            joiner.output.weight,
            joiner.output.bias,
            *args,
            blank=0,
            reduction="sum",
        )
    return F.rnnt_loss(joiner(enc, pred), *args, blank=0, reduction="sum")


def _flush(on: bool) -> None:
    fn = _FLUSH if on else (lambda x: x)
    fast.flush_subnormal_ = fn
    joint.flush_subnormal_ = fn


def _set(method: str) -> None:
    """The flush and the joint pass that ``method`` asks for ("": the defaults)."""
    _flush(not method.endswith("no flush"))
    joint._CPU_PASS = "torch pass" not in method
    joint._SKIP_OCCUPANCY = joint.EVERY_CELL if method.endswith("every cell") else _SKIP


def _loss_and_grads(method: str, joiner: Joiner, inp) -> list[torch.Tensor]:
    enc = inp[0].detach().requires_grad_(True)
    pred = inp[1].detach().requires_grad_(True)
    _set(method)
    try:
        loss = _loss_fn(method, joiner, enc, pred, *inp[2:])
        return [loss.detach(), *torch.autograd.grad(loss, [enc, pred])]
    finally:
        _set("")


def _step(method: str, joiner: Joiner, inp) -> float:
    enc = inp[0].detach().requires_grad_(True)
    pred = inp[1].detach().requires_grad_(True)
    _set(method)
    try:
        t0 = time.perf_counter()
        _loss_fn(method, joiner, enc, pred, *inp[2:]).backward()
        return time.perf_counter() - t0
    finally:
        _set("")


def computed_share(joiner: Joiner, inputs) -> dict:
    """How many lattice cells the CPU pass's backward computes (``kernels.joint_active_rows``)
    out of all the valid cells, over one forward + backward of every input."""
    k = fast._kernels
    real = k.joint_active_rows
    count = {"computed": 0, "cells": 0}

    def counting(o_blank, o_label, b, t0, t1, u1, eps, rows):
        n = real(o_blank, o_label, b, t0, t1, u1, eps, rows)
        count["computed"] += int(n)
        count["cells"] += (t1 - t0) * u1
        return n

    k.joint_active_rows = counting
    try:
        for inp in inputs:
            _step("blocked, CPU pass", joiner, inp)
    finally:
        k.joint_active_rows = real
    return {**count, "share": count["computed"] / max(count["cells"], 1)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--run", type=Path, help="a trained transducer run (real inputs)")
    ap.add_argument("--split", default="target_train")
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--shape", type=int, nargs=3, default=[10, 75, 55], metavar=("B", "T", "U"))
    ap.add_argument("--vocab", type=int, default=28)
    ap.add_argument("--sharpness", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.run:
        joiner, inputs = _real_inputs(args.run, args.split, args.batches)
        source = f"{args.run} ({args.split}, {len(inputs)} batches)"
    else:
        joiner, inputs = _random_inputs(args.shape, args.vocab, args.sharpness, args.batches)
        source = f"random B, T, U = {args.shape}, V = {args.vocab}, sharpness {args.sharpness}"
    # the same loss and gradients from every method, before anything is timed
    results = {m: _loss_and_grads(m, joiner, inputs[0]) for m in METHODS}
    for m, values in results.items():
        for name, a, b in zip(("loss", "enc", "pred"), values, results["logits"], strict=True):
            if not torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max())):
                sys.exit(f"{m} disagrees with logits in {name}: {(a - b).abs().max():.3g}")
    for m in METHODS:  # warm-up: numba's JIT cache, allocator
        _step(m, joiner, inputs[0])
    totals: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(args.repeats):
        sums = dict.fromkeys(METHODS, 0.0)
        for inp in inputs:
            for m in METHODS:
                sums[m] += _step(m, joiner, inp)
        for m in METHODS:
            totals[m].append(sums[m] / len(inputs))
    saved = {}
    for m in METHODS:
        if m.endswith(", no flush"):  # keeps what the flushed method keeps
            continue
        enc = inputs[0][0].detach().requires_grad_(True)
        pred = inputs[0][1].detach().requires_grad_(True)
        fn = lambda m=m, e=enc, p=pred: _loss_fn(m, joiner, e, p, *inputs[0][2:])  # noqa: E731
        _set(m)
        try:
            saved[m] = saved_activation_bytes(joiner, fn) / 2**20
        finally:
            _set("")
    for m in METHODS:
        saved.setdefault(m, saved[m.removesuffix(", no flush")])
    share = computed_share(joiner, inputs)
    assert fast.flush_subnormal_ is _FLUSH and joint.flush_subnormal_ is _FLUSH and joint._CPU_PASS
    assert joint._SKIP_OCCUPANCY is _SKIP
    base = statistics.median(totals["logits"])
    rows = []
    for m in METHODS:
        med = statistics.median(totals[m])
        rows.append({"method": m, "ms": med * 1e3, "vs_logits": base / med, "saved_MiB": saved[m]})
    shapes = [(*inp[0].shape[:2], inp[1].shape[1]) for inp in inputs]
    report = {
        "source": source,
        "shapes_B_T_U1": shapes,
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "rows": rows,
        "ms_per_repeat": {m: [x * 1e3 for x in v] for m, v in totals.items()},
        "cpu_pass_backward_cells": share,
    }
    print(f"{source}; {args.threads} threads, median of {args.repeats} repeats")
    print("| method | ms per batch (fwd + bwd) | speed-up vs logits | saved for backward MiB |")
    print("| --- | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['method']} | {r['ms']:.1f} | {r['vs_logits']:.2f}× | {r['saved_MiB']:.1f} |")
    print(f"the CPU pass's backward computed {share['computed']:,} of {share['cells']:,} lattice "
          f"cells ({100 * share['share']:.1f}%)")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
