"""Lattice losses: semiasr.functional against torch's CTC and torchaudio's RNN-T, side by side.

For every size it times forward + backward (from the logits, log_softmax included for CTC) and
measures peak memory, for ours and the reference, interleaved in the same run (ours, reference,
ours, reference, …; the best of ``--repeats`` is reported — on a machine shared with other jobs
the minimum is the steadier estimate — and the median is stored in the JSON too). It also times our alignment entropy and
KL (student side) against our own loss at the same size. Ratios: time ours / reference; peak / logits
bytes; entropy and KL time / our loss time.

Peak memory on the CPU: the run is repeated once under ``torch.profiler`` with memory profiling,
and every allocation and free the torch CPU allocator saw is replayed in time order; the peak of
that running sum is the extra memory of forward + backward (the logits themselves were allocated
before). Reported peak = logits bytes + that extra. Buffers that numba kernels allocate themselves
(the CTC α/β scratch, float64, one utterance per thread) do not pass through torch; they are added
analytically (arrays × T × (2U+1) × 8 bytes × min(threads, B)).

torchaudio is not a dependency (its wheels pin another torch). With ``--ref-python`` pointing at an
interpreter that has torchaudio, the RNN-T reference runs in a worker process of that interpreter,
fed the same sizes one by one (so the timings stay interleaved); without it the RNN-T reference
columns are empty and the script says so.

    python benchmarks/losses.py [--quick] [--repeats 5] [--threads 2] \
        [--ref-python /work/refenv/bin/python] [--out runs/bench/losses.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

CTC_SIZES = [(8, t, t // 4, v) for t in (100, 400, 1000) for v in (32, 256, 1024)]
RNNT_SIZES = [(4, t, u, v) for t in (100, 250) for u in (20, 50) for v in (32, 256, 1024)]


# ------------------------------------------------------------------------------ measuring


def peak_extra_bytes(fn) -> int:
    """Peak of (bytes allocated − bytes freed) by the torch CPU allocator while ``fn()`` runs."""
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events: list[tuple[int, int]] = []

    def walk(node) -> None:
        if node.tag == _EventType.Allocation:
            events.append((node.start_time_ns, node.extra_fields.alloc_size))
        for child in node.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    current = peak = 0
    for _, size in sorted(events):
        current += size
        peak = max(peak, current)
    return peak


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ctc_inputs(b: int, t: int, u: int, v: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, v, generator=g).requires_grad_(True)
    targets = torch.randint(1, v, (b, u), generator=g)
    return logits, targets, torch.full((b,), t), torch.full((b,), u)


def rnnt_inputs(b: int, t: int, u: int, v: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, t, u + 1, v, generator=g).requires_grad_(True)
    targets = torch.randint(1, v, (b, u), generator=g, dtype=torch.int32)
    return (
        logits,
        targets,
        torch.full((b,), t, dtype=torch.int32),
        torch.full((b,), u, dtype=torch.int32),
    )


def _backward(loss: torch.Tensor, logits: torch.Tensor) -> None:
    logits.grad = None
    loss.backward()
    logits.grad = None


# ------------------------------------------------------------------------- the workloads


def ctc_jobs(size):
    import torch.nn.functional as tnf

    from semiasr import functional as F

    logits, targets, il, tl = ctc_inputs(*size)
    teacher = torch.randn_like(logits).log_softmax(-1)

    def ours():
        _backward(F.ctc_loss(logits.log_softmax(-1), targets, il, tl), logits)

    def reference():
        lp = logits.log_softmax(-1).transpose(0, 1)
        _backward(tnf.ctc_loss(lp, targets, il, tl), logits)

    def entropy():
        _backward(F.ctc_alignment_entropy(logits.log_softmax(-1), targets, il, tl).mean(), logits)

    def kl():
        lp = logits.log_softmax(-1)
        _backward(F.ctc_alignment_kl(lp, teacher, targets, il, tl).mean(), logits)

    return logits, {"ours": ours, "reference": reference, "entropy": entropy, "kl": kl}


def rnnt_jobs(size):
    from semiasr import functional as F

    logits, targets, il, tl = rnnt_inputs(*size)
    teacher = torch.randn_like(logits)

    def ours():
        _backward(F.rnnt_loss(logits, targets, il, tl, blank=0), logits)

    def entropy():
        _backward(F.rnnt_alignment_entropy(logits, targets, il, tl, blank=0).mean(), logits)

    def kl():
        _backward(F.rnnt_alignment_kl(logits, teacher, targets, il, tl, blank=0).mean(), logits)

    return logits, {"ours": ours, "entropy": entropy, "kl": kl}


def numba_scratch_bytes(size, arrays: int, threads: int) -> int:
    """CTC kernels allocate ``arrays`` float64 (T, 2U+1) arrays per utterance in flight."""
    b, t, u, _ = size
    return arrays * t * (2 * u + 1) * 8 * min(threads, b)


# ------------------------------------------------------------------- torchaudio worker


def worker(threads: int) -> None:
    """Read RNN-T sizes as JSON lines, answer each with torchaudio's time and peak (no semiasr)."""
    import warnings

    from torchaudio.functional import rnnt_loss

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    for line in sys.stdin:
        req = json.loads(line)
        logits, targets, il, tl = rnnt_inputs(*req["size"])

        def run(logits=logits, targets=targets, il=il, tl=tl):
            _backward(rnnt_loss(logits, targets, il, tl, blank=0), logits)

        if req["what"] == "warmup":
            run()
            out: dict[str, Any] = {}
        elif req["what"] == "time":
            out = {"seconds": seconds(run)}
        else:
            out = {"peak_extra": peak_extra_bytes(run)}
        print(json.dumps(out), flush=True)


class Reference:
    """The torchaudio worker, or None-answers when it is unavailable."""

    def __init__(self, python: str | None, threads: int):
        self.proc = None
        self.version = None
        if python:
            probe = subprocess.run(
                [
                    python,
                    "-c",
                    "import torch, torchaudio; print(torch.__version__, torchaudio.__version__)",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0:
                self.version = probe.stdout.strip()
                self.proc = subprocess.Popen(
                    [python, __file__, "--worker", "--threads", str(threads)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )

    def ask(self, size, what: str) -> dict[str, Any] | None:
        if self.proc is None:
            return None
        self.proc.stdin.write(json.dumps({"size": size, "what": what}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()


# ----------------------------------------------------------------------------------- main


def bench_size(kind: str, size, repeats: int, threads: int, ref: Reference) -> dict[str, Any]:
    logits, jobs = (ctc_jobs if kind == "ctc" else rnnt_jobs)(size)
    external = kind == "rnnt"
    for fn in jobs.values():
        fn()  # warm-up (numba compiles / loads its cache on first use)
    if external:
        ref.ask(size, "warmup")
    times: dict[str, list[float]] = {name: [] for name in jobs}
    if external:
        times["reference"] = []
    for _ in range(repeats):
        for name, fn in jobs.items():
            times[name].append(seconds(fn))
        if external:
            answer = ref.ask(size, "time")
            if answer is not None:
                times["reference"].append(answer["seconds"])
    med = {k: min(v) if v else None for k, v in times.items()}
    medians = {k: statistics.median(v) if v else None for k, v in times.items()}
    logits_bytes = logits.numel() * logits.element_size()
    peak = {name: peak_extra_bytes(jobs[name]) for name in ("ours", "entropy", "kl")}
    if kind == "ctc":
        peak["reference"] = peak_extra_bytes(jobs["reference"])
        peak["ours"] += numba_scratch_bytes(size, 1, threads)  # α; β is kept one frame at a time
        peak["entropy"] += numba_scratch_bytes(size, 4, threads)  # α, β, ā, b̄
        peak["kl"] += numba_scratch_bytes(size, 1, threads)
    else:
        answer = ref.ask(size, "peak")
        peak["reference"] = None if answer is None else answer["peak_extra"]
    row: dict[str, Any] = {"kind": kind, "B": size[0], "T": size[1], "U": size[2], "V": size[3]}
    row["logits_MB"] = logits_bytes / 2**20
    for name, value in med.items():
        row[f"{name}_ms"] = None if value is None else 1000 * value
        row[f"{name}_median_ms"] = None if medians[name] is None else 1000 * medians[name]
    for name, value in peak.items():
        row[f"{name}_peak_x"] = None if value is None else (logits_bytes + value) / logits_bytes
    ref_t = med.get("reference")
    row["time_ratio"] = med["ours"] / ref_t if ref_t else None
    row["entropy_over_loss"] = med["entropy"] / med["ours"]
    row["kl_over_loss"] = med["kl"] / med["ours"]
    return row


def fmt(x, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="the smallest sizes only")
    ap.add_argument("--ref-python", default=None, help="an interpreter with torchaudio")
    ap.add_argument("--out", default="runs/bench/losses.json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.threads)
        return
    import numba

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    ref = Reference(args.ref_python, args.threads)
    if ref.proc is None:
        print(
            "torchaudio is not installed here (its wheels need another torch): the RNN-T "
            "reference columns stay empty; pass --ref-python to an env that has it."
        )
    ctc_sizes = CTC_SIZES[:2] if args.quick else CTC_SIZES
    rnnt_sizes = RNNT_SIZES[:2] if args.quick else RNNT_SIZES
    rows = []
    header = (
        f"{'kind':5} {'B':>2} {'T':>5} {'U':>4} {'V':>5} {'ours ms':>9} {'ref ms':>9} "
        f"{'ours/ref':>8} {'peak/logits':>11} {'ref peak':>8} {'H/loss':>6} {'KL/loss':>7}"
    )
    print(header)
    for kind, sizes in (("ctc", ctc_sizes), ("rnnt", rnnt_sizes)):
        for size in sizes:
            row = bench_size(kind, size, args.repeats, args.threads, ref)
            rows.append(row)
            print(
                f"{kind:5} {size[0]:>2} {size[1]:>5} {size[2]:>4} {size[3]:>5} "
                f"{fmt(row['ours_ms'], '9.1f')} {fmt(row['reference_ms'], '9.1f')} "
                f"{fmt(row['time_ratio'], '8.2f')} {fmt(row['ours_peak_x'], '11.2f')} "
                f"{fmt(row['reference_peak_x'], '8.2f')} {row['entropy_over_loss']:6.2f} "
                f"{row['kl_over_loss']:7.2f}",
                flush=True,
            )
    ref.close()
    doc = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "note": "shared machine (other jobs running): compare ratios, not absolute times",
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numba": numba.__version__,
            "reference_env": ref.version,
        },
        "repeats": args.repeats,
        "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
