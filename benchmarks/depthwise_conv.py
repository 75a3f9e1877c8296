"""The Conformer's depthwise convolution over time, forward and backward: semiasr's numba kernels
against oneDNN's depthwise ``F.conv1d``, side by side on the same tensors.

* ``conv1d``: what ``ConvModule`` ran until 2026-11-28 — pad time in the (B, T, C) layout, hand
  ``F.conv1d`` (groups = C) a transposed view, transpose back (still the path of GPUs and half
  precision);
* ``numba``: :func:`semiasr.nn.depthwise.depthwise_conv_time` on the CPU — the (B, T, C) layout
  throughout, one serial kernel each for the output, the input gradient and the weight gradient;
* ``toeplitz``: the block-Toeplitz matrix products of the convolution adapters
  (:func:`semiasr.adapt.adapters.time_conv` on GPUs and under autocast; their CPU path until
  session 20, when they moved to the numba kernels). The adapters' shape::

    python benchmarks/depthwise_conv.py --channels 64 --kernel 31

Each batch has another number of frames (``--frames`` plus 0 … ``--batches`` − 1), as training's
batches do, so oneDNN builds its primitives for every shape; the first ``--warmup`` rounds are not
timed. Each round runs every method once per batch, interleaved; reported: the median over rounds
of the mean time per batch (forward + backward of input, weight and bias), and the ratio to conv1d.
Before timing, both are checked to agree (output and every gradient) to 1e-5 of the largest entry::

    python benchmarks/depthwise_conv.py --json runs/bench/depthwise_conv.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from semiasr.adapt.adapters import _TimeConv
from semiasr.nn import depthwise

METHODS = ("conv1d", "numba", "toeplitz")


def _run(method: str, h, weight, bias, padding, gy) -> list[torch.Tensor]:
    kernels = depthwise._kernels
    if method == "conv1d":
        depthwise._kernels = None
    try:
        h = h.detach().requires_grad_(True)
        if method == "toeplitz":
            y = _TimeConv.apply(h, weight[:, 0], *padding) + bias
        else:
            y = depthwise.depthwise_conv_time(h, weight, bias, padding)
        grads = torch.autograd.grad(y, [h, weight, bias], gy)
    finally:
        depthwise._kernels = kernels
    return [y.detach(), *grads]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--batch", type=int, default=7)
    ap.add_argument("--frames", type=int, default=100, help="frames of the first batch")
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--kernel", type=int, default=15)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    c, k = args.channels, args.kernel
    padding = (k - 1, 0) if args.causal else ((k - 1) // 2, k - 1 - (k - 1) // 2)
    weight = torch.randn(c, 1, k, generator=g).requires_grad_(True)
    bias = torch.randn(c, generator=g).requires_grad_(True)
    inputs = []
    for i in range(args.batches):
        t = args.frames + i
        h = torch.randn(args.batch, t, c, generator=g)
        inputs.append((h, torch.randn(args.batch, t + sum(padding) - k + 1, c, generator=g)))
    ref = _run("conv1d", inputs[0][0], weight, bias, padding, inputs[0][1])
    for m in METHODS[1:]:
        got = _run(m, inputs[0][0], weight, bias, padding, inputs[0][1])
        for name, a, b in zip(
            ("output", "input grad", "weight grad", "bias grad"), got, ref, strict=True
        ):
            if not torch.allclose(a, b, rtol=0, atol=1e-5 * float(b.abs().max())):
                sys.exit(f"{m} disagrees with conv1d in the {name}: {(a - b).abs().max():.3g}")
    totals: dict[str, list[float]] = {m: [] for m in METHODS}
    for r in range(args.warmup + args.rounds):
        sums = dict.fromkeys(METHODS, 0.0)
        for h, gy in inputs:
            for m in METHODS:
                t0 = time.perf_counter()
                _run(m, h, weight, bias, padding, gy)
                sums[m] += time.perf_counter() - t0
        if r >= args.warmup:
            for m in METHODS:
                totals[m].append(sums[m] / len(inputs))
    base = statistics.median(totals["conv1d"])
    rows = [
        {"method": m, "ms": 1e3 * statistics.median(totals[m]),
         "vs_conv1d": base / statistics.median(totals[m])}
        for m in METHODS
    ]  # fmt: skip
    report = {
        "shape": {"batch": args.batch, "frames": f"{args.frames}-{args.frames + args.batches - 1}",
                  "channels": c, "kernel": k, "padding": list(padding)},
        "threads": args.threads,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "rows": rows,
        "ms_per_round": {m: [x * 1e3 for x in v] for m, v in totals.items()},
    }  # fmt: skip
    print(f"(B, T, C) = ({args.batch}, {report['shape']['frames']}, {c}), {k} taps, padding "
          f"{padding}; {args.threads} threads, median of {args.rounds} rounds")  # fmt: skip
    print("| method | ms per batch (fwd + bwd) | speed-up vs conv1d |")
    print("| --- | ---: | ---: |")
    for r in rows:
        print(f"| {r['method']} | {r['ms']:.2f} | {r['vs_conv1d']:.2f}× |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
