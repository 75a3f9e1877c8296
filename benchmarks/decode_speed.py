"""Decoding speed: real-time factors (RTF = wall-clock seconds / audio seconds; lower is faster) of
the encoder and of each search, for the xs and s presets on random weights.

    .venv/bin/python benchmarks/decode_speed.py
    .venv/bin/python benchmarks/decode_speed.py --presets xs --batch 4 --seconds 5 --json out.json
    python benchmarks/decode_speed.py --device cuda     # on a GPU (each timing synchronises)

Audio seconds = input frames × 0.01 (10 ms frame shift). Random weights emit a token almost every
frame, unlike trained models; the joiner's and CTC head's blank bias is raised so that about one
frame in ``--emit-every`` emits a token (the measured rate is printed). Searches: batched transducer
greedy (≤ 3 symbols per frame), modified beam search (beam 4, one symbol per frame), beam search with
≤ 3 symbols per frame (what ``Transducer.decode`` runs), CTC greedy and CTC prefix beam search
(beam 4, 4 tokens per frame) on a CTC head over the same encoder frames. Peer: the same greedy
search run one utterance at a time (the unbatched loop most recipes use); runs alternate (ours,
peer, …) so that load on a shared machine hits both, and the summary reports medians and the median
ratio. Every search is called once untimed first (kernel caches, allocations).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from semiasr.decoding import (  # noqa: E402
    ctc_greedy_search,
    ctc_prefix_beam_search,
    transducer_beam_search,
    transducer_greedy_search,
)
from semiasr.models import ModelConfig, build_model, count_parameters  # noqa: E402
from semiasr.nn import CTCHead  # noqa: E402
from semiasr.train.runtime import resolve_device  # noqa: E402

FRAME_SHIFT_S = 0.01


CPU = torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device = CPU) -> tuple[float, object]:
    """Wall-clock seconds of ``fn()`` (the device's queued work finished before and after)."""
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


def _bisect_bias(head: torch.nn.Linear, rate_fn, target: float, steps: int = 10) -> None:
    """Set ``head.bias[0]`` (blank) so that ``rate_fn()``, tokens emitted per frame, is ≈ target."""
    lo, hi = -10.0, 40.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        head.bias[0] = mid
        lo, hi = (mid, hi) if rate_fn() > target else (lo, mid)


@torch.no_grad()
def _calibrate_blank(model, ctc_head, frames: torch.Tensor, emit_every: float) -> None:
    """Raise the blank biases until greedy search emits about one token per ``emit_every`` frames
    on ``frames`` (T, D)."""
    n = torch.tensor([frames.shape[0]], device=frames.device)

    def transducer_rate() -> float:
        out = transducer_greedy_search(model.predictor, model.joiner, frames[None], n)
        return len(out.tokens[0]) / frames.shape[0]

    def ctc_rate() -> float:
        return len(ctc_greedy_search(ctc_head(frames[None]), n).tokens[0]) / frames.shape[0]

    _bisect_bias(model.joiner.output, transducer_rate, 1 / emit_every)
    _bisect_bias(ctc_head.output, ctc_rate, 1 / emit_every)


def bench_preset(preset: str, args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    device = args.torch_device
    model = build_model(ModelConfig(preset=preset, dropout=0.0), args.vocab).eval().to(device)
    ctc_head = CTCHead(model.encoder.output_dim, args.vocab).eval().to(device)
    t = int(args.seconds / FRAME_SHIFT_S)
    lengths = torch.tensor([t - (i * t) // (4 * args.batch) for i in range(args.batch)])
    features = torch.randn(args.batch, t, 80).to(device)
    lengths = lengths.to(device)
    audio_s = float(lengths.sum()) * FRAME_SHIFT_S
    with torch.no_grad():
        enc = model.encode(features, lengths)
        _calibrate_blank(model, ctc_head, enc.frames[0, : enc.lengths[0]], args.emit_every)
        log_probs = ctc_head(enc.frames)
    p, j, f, n = model.predictor, model.joiner, enc.frames, enc.lengths

    def per_utterance_greedy():
        for b in range(f.shape[0]):
            transducer_greedy_search(p, j, f[b : b + 1, : n[b]], n[b : b + 1])

    runs = {
        "encoder": lambda: model.encode(features, lengths),
        "transducer greedy": lambda: transducer_greedy_search(p, j, f, n),
        "transducer greedy, one utterance at a time (peer)": per_utterance_greedy,
        "transducer beam 4": lambda: transducer_beam_search(p, j, f, n, beam=4),
        "transducer beam 4, ≤ 3 symbols / frame": lambda: transducer_beam_search(
            p, j, f, n, beam=4, max_symbols_per_frame=3
        ),
        "ctc greedy": lambda: ctc_greedy_search(log_probs, n),
        "ctc prefix beam 4": lambda: ctc_prefix_beam_search(log_probs, n, beam=4, token_prune=4),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    with torch.no_grad():
        for fn in runs.values():  # untimed: first calls pay for kernel caches and allocations
            _timed(fn, device)
        for _ in range(args.repeats):  # interleaved, so that load hits every row alike
            for name, fn in runs.items():
                times[name].append(_timed(fn, device)[0])
        greedy = transducer_greedy_search(p, j, f, n)
    rows = {k: statistics.median(v) / audio_s for k, v in times.items()}
    peer = times["transducer greedy, one utterance at a time (peer)"]
    ratios = [a / b for a, b in zip(peer, times["transducer greedy"])]
    return {
        "preset": preset,
        "parameters": count_parameters(model),
        "audio_seconds": audio_s,
        "tokens_per_encoder_frame": sum(len(x) for x in greedy.tokens) / float(n.sum()),
        "rtf": rows,
        "batched_greedy_speedup_over_peer": statistics.median(ratios),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["xs", "s"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0, help="longest utterance, seconds")
    ap.add_argument("--vocab", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--emit-every", type=float, default=4.0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    args = ap.parse_args()
    args.torch_device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = [bench_preset(p, args) for p in args.presets]
    report = {
        "benchmark": "decode_speed",
        "device": str(args.torch_device),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "vocab": args.vocab,
        "results": results,
    }
    print(
        f"RTF (lower is faster), batch {args.batch}, {args.torch_device}, "
        f"{torch.get_num_threads()} threads, medians"
    )
    for r in results:
        print(
            f"\npreset {r['preset']} ({r['parameters'] / 1e6:.1f} M parameters), "
            f"{r['audio_seconds']:.0f} s audio, {r['tokens_per_encoder_frame']:.2f} tokens/frame"
        )
        for name, rtf in r["rtf"].items():
            print(f"  {name:<52} {rtf:10.5f}")
        print(
            f"  batched greedy is {r['batched_greedy_speedup_over_peer']:.2f}x faster than the peer"
        )
    text = json.dumps(report, indent=2)
    print("\n" + text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
