"""Shallow fusion of an n-gram LM in beam search: tune on a dev split, then score the test splits.

The LM is the run's own: an interpolated Kneser–Ney n-gram of its training transcripts
(``semiasr.lm``). On ``--dev`` (default source_dev: held-out voices, sentences in neither training
nor test) every (order, weight, bonus) of the grid is decoded; the best is then applied, unchanged,
to each ``--test`` split next to greedy search and beam search without an LM. The encoder runs once
per split; only the search is repeated.

    python benchmarks/lm_fusion.py runs/demo [--checkpoint averaged] [--beam 4] \\
        [--orders 4 6 8] [--weights 0 0.2 0.3 0.4 0.5] [--bonuses 0 0.5 1] --out runs/bench/lm

Writes ``lm_fusion.json`` and ``lm_fusion.png`` (dev WER over weight × bonus per order) to ``--out``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

import torch

from semiasr.data.loader import build_dataloader
from semiasr.eval import wer
from semiasr.lm import ShallowFusion
from semiasr.tasks.evaluate import load_trained, routed, run_lm


def encode_split(decoder: Any, split: str) -> list[tuple[Any, list[str]]]:
    """(encoder output, reference texts) per batch of ``split``."""
    loader = build_dataloader(
        decoder.cfg.data,
        [split],
        decoder.tokenizer,
        train=False,
        labels=False,
        feature_stats=decoder.stats,
    )
    out = []
    with torch.no_grad():
        for batch in loader:
            b = batch.to(decoder.device)
            with routed(decoder.model, decoder.cfg, b.domains):
                out.append((decoder.model.encode(b.features, b.feature_lengths), list(b.texts)))
    return out


def search_wer(
    decoder: Any, encoded: list, method: str, beam: int, fusion: ShallowFusion | None
) -> tuple[float, float]:
    """(WER %, search seconds) of one search over pre-encoded batches."""
    refs, hyps, t0 = [], [], time.perf_counter()
    with torch.no_grad():
        for enc, texts in encoded:
            extra = {"fusion": fusion} if fusion is not None else {}
            d = decoder.model.decode(enc, method, beam, **extra)
            hyps += [decoder.tokenizer.decode(x) for x in d.tokens]
            refs += texts
    return wer(refs, hyps), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("run", type=Path)
    ap.add_argument("--checkpoint", default="averaged")
    ap.add_argument("--dev", default="source_dev")
    ap.add_argument("--test", nargs="*", default=["source_test", "target_test"])
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--orders", type=int, nargs="+", default=[4, 6, 8])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.5])
    ap.add_argument("--bonuses", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/lm"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dec = load_trained(args.run, args.checkpoint)
    lms = {n: run_lm(dec, n) for n in args.orders}
    dev = encode_split(dec, args.dev)
    base, _ = search_wer(dec, dev, "beam", args.beam, None)
    grid = []
    for n, w, bonus in itertools.product(args.orders, args.weights, args.bonuses):
        dev_wer, secs = search_wer(dec, dev, "beam", args.beam, ShallowFusion(lms[n], w, bonus))
        grid.append({"order": n, "weight": w, "bonus": bonus, "dev_wer": dev_wer, "search_s": secs})
        print(f"order {n} weight {w:g} bonus {bonus:g}: {args.dev} WER {dev_wer:.2f}", flush=True)
    best = min(grid, key=lambda r: r["dev_wer"])
    fusion = ShallowFusion(lms[best["order"]], best["weight"], best["bonus"])
    tests = {}
    for split in args.test:
        encoded = encode_split(dec, split)
        row = {}
        for name, method, fus in (
            ("greedy", "greedy", None),
            (f"beam {args.beam}", "beam", None),
            (f"beam {args.beam} + LM", "beam", fusion),
        ):
            row[name], row[f"{name} search s"] = search_wer(dec, encoded, method, args.beam, fus)
        tests[split] = row
    result = {
        "run": str(args.run),
        "checkpoint": str(dec.checkpoint),
        "dev": args.dev,
        "dev_wer_beam_no_lm": base,
        "grid": grid,
        "picked": best,
        "test": tests,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lm_fusion.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args, args.out / "lm_fusion.png")
    print(
        f"\npicked on {args.dev} (beam {args.beam} without LM: {base:.2f}): order "
        f"{best['order']}, weight {best['weight']:g}, bonus {best['bonus']:g} → {best['dev_wer']:.2f}"
    )
    names = list(next(iter(tests.values())))
    shown = [n for n in names if not n.endswith(" s")]
    print("| split | " + " | ".join(shown) + " |")
    print("| --- |" + " ---: |" * len(shown))
    for split, row in tests.items():
        print(f"| {split} | " + " | ".join(f"{row[n]:.2f}" for n in shown) + " |")


def plot(result: dict[str, Any], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(args.orders), figsize=(4 * len(args.orders), 3.6), squeeze=False
    )
    for ax, n in zip(axes[0], args.orders):
        for bonus in args.bonuses:
            rows = [r for r in result["grid"] if r["order"] == n and r["bonus"] == bonus]
            ax.plot(
                [r["weight"] for r in rows],
                [r["dev_wer"] for r in rows],
                marker="o",
                label=f"bonus {bonus:g}",
            )
        ax.axhline(result["dev_wer_beam_no_lm"], color="gray", ls="--", label="no LM")
        ax.set_title(f"{n}-gram LM")
        ax.set_xlabel("LM weight")
        ax.set_ylabel(f"{result['dev']} WER %")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"shallow fusion, beam {args.beam}: {args.run}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
