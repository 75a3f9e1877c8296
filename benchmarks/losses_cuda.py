"""Lattice losses on a CUDA device: semiasr.functional against torch's CTC and torchaudio's RNN-T.

The GPU counterpart of ``benchmarks/losses.py``: for every size, forward + backward from the logits
(log_softmax included for CTC) of ours and of the reference, interleaved, best of ``--repeats``
(each timed between ``torch.cuda.synchronize()`` calls), and the peak of GPU memory allocated
during the call beyond the logits (``torch.cuda.max_memory_allocated``), as a multiple of the logits'
bytes. Also our alignment entropy and KL against our own loss. torchaudio is used where importable
(it is not a dependency of semiasr); without it the RNN-T reference columns stay empty.

    python benchmarks/losses_cuda.py [--repeats 5] [--out runs/bench/losses_cuda.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

CTC_SIZES = [(8, t, t // 4, v) for t in (100, 400, 1000) for v in (32, 256, 1024)]
RNNT_SIZES = [(4, t, u, v) for t in (100, 250) for u in (20, 50) for v in (32, 256, 1024)] + [
    (16, 500, 100, 1024)  # a GPU-sized batch: 3.3 GB of float32 logits
]


def _sync_time(fn) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - start


def _peak_extra(fn) -> int:
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def _backward(loss: torch.Tensor, logits: torch.Tensor) -> None:
    logits.grad = None
    loss.backward()
    logits.grad = None


def jobs(kind: str, size, dev: torch.device) -> tuple[torch.Tensor, dict[str, Any]]:
    import torch.nn.functional as tnf

    from semiasr import functional as F

    g = torch.Generator().manual_seed(0)
    b, t, u, v = size
    if kind == "ctc":
        logits = torch.randn(b, t, v, generator=g).to(dev).requires_grad_(True)
        targets = torch.randint(1, v, (b, u), generator=g).to(dev)
        teacher = torch.randn_like(logits).log_softmax(-1)
    else:
        logits = torch.randn(b, t, u + 1, v, generator=g).to(dev).requires_grad_(True)
        targets = torch.randint(1, v, (b, u), generator=g, dtype=torch.int32).to(dev)
        teacher = torch.randn_like(logits)
    il = torch.full((b,), t, dtype=torch.int32, device=dev)
    tl = torch.full((b,), u, dtype=torch.int32, device=dev)
    out: dict[str, Any] = {}
    if kind == "ctc":
        out["ours"] = lambda: _backward(F.ctc_loss(logits.log_softmax(-1), targets, il, tl), logits)
        out["reference"] = lambda: _backward(
            tnf.ctc_loss(logits.log_softmax(-1).transpose(0, 1), targets, il, tl), logits
        )
        out["entropy"] = lambda: _backward(
            F.ctc_alignment_entropy(logits.log_softmax(-1), targets, il, tl).mean(), logits
        )
        out["kl"] = lambda: _backward(
            F.ctc_alignment_kl(logits.log_softmax(-1), teacher, targets, il, tl).mean(), logits
        )
    else:
        out["ours"] = lambda: _backward(F.rnnt_loss(logits, targets, il, tl, blank=0), logits)
        try:
            from torchaudio.functional import rnnt_loss as ta_rnnt

            out["reference"] = lambda: _backward(ta_rnnt(logits, targets, il, tl, blank=0), logits)
        except ImportError:
            out["reference"] = None
        if t * (u + 1) * v <= 4 * 250 * 51 * 1024:  # entropy / KL at the issue's sizes only
            out["entropy"] = lambda: _backward(
                F.rnnt_alignment_entropy(logits, targets, il, tl, blank=0).mean(), logits
            )
            out["kl"] = lambda: _backward(
                F.rnnt_alignment_kl(logits, teacher, targets, il, tl, blank=0).mean(), logits
            )
    return logits, out


def bench(kind: str, size, repeats: int, dev: torch.device) -> dict[str, Any]:
    logits, fns = jobs(kind, size, dev)
    fns = {k: f for k, f in fns.items() if f is not None}
    first = {k: _sync_time(f) for k, f in fns.items()}  # warm-up (and compiles)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(repeats):
        for k, f in fns.items():
            if i == 0 or first[k] < 1.0:  # a call slower than a second is timed once
                times[k].append(_sync_time(f))
    logits_bytes = logits.numel() * logits.element_size()
    row: dict[str, Any] = {"kind": kind, "B": size[0], "T": size[1], "U": size[2], "V": size[3]}
    row["logits_MB"] = logits_bytes / 2**20
    for k in ("ours", "reference", "entropy", "kl"):
        row[f"{k}_ms"] = 1000 * min(times[k]) if k in times else None
    for k in ("ours", "reference"):
        row[f"{k}_peak_x"] = (
            (logits_bytes + _peak_extra(fns[k])) / logits_bytes if k in fns else None
        )
    ref = row["reference_ms"]
    row["time_ratio"] = row["ours_ms"] / ref if ref else None
    row["entropy_over_loss"] = row["entropy_ms"] / row["ours_ms"] if row["entropy_ms"] else None
    row["kl_over_loss"] = row["kl_ms"] / row["ours_ms"] if row["kl_ms"] else None
    del logits, fns
    torch.cuda.empty_cache()
    return row


def fmt(x, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="runs/bench/losses_cuda.json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run benchmarks/losses.py for the CPU")
    dev = torch.device("cuda")
    try:
        import torchaudio

        ta_version = torchaudio.__version__
    except ImportError:
        ta_version = None
        print("torchaudio is not installed: the RNN-T reference columns stay empty")
    print(
        f"{'kind':5} {'B':>2} {'T':>5} {'U':>4} {'V':>5} {'ours ms':>9} {'ref ms':>9} "
        f"{'ours/ref':>8} {'peak/logits':>11} {'ref peak':>8} {'H/loss':>6} {'KL/loss':>7}"
    )
    rows = []
    for kind, sizes in (("ctc", CTC_SIZES), ("rnnt", RNNT_SIZES)):
        for size in sizes:
            row = bench(kind, size, args.repeats, dev)
            rows.append(row)
            print(
                f"{kind:5} {size[0]:>2} {size[1]:>5} {size[2]:>4} {size[3]:>5} "
                f"{fmt(row['ours_ms'], '9.2f')} {fmt(row['reference_ms'], '9.2f')} "
                f"{fmt(row['time_ratio'], '8.2f')} {fmt(row['ours_peak_x'], '11.2f')} "
                f"{fmt(row['reference_peak_x'], '8.2f')} {fmt(row['entropy_over_loss'], '6.2f')} "
                f"{fmt(row['kl_over_loss'], '7.2f')}",
                flush=True,
            )
    doc = {
        "machine": {
            "gpu": torch.cuda.get_device_name(),
            "platform": platform.platform(),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "torchaudio": ta_version,
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
