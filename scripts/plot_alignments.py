"""Plot CTC and RNN-T alignment posteriors (arc occupancies) of a peaky and a diffuse model.

Writes docs/figures/alignment_posteriors.png (matplotlib, Agg backend): top row CTC, the posterior of
each extended-label state (b y1 b y2 … b) at each frame; bottom row RNN-T, the posterior of visiting
each lattice cell (t, u). Left: a peaky model (one alignment dominates, entropy near 0); right: a
diffuse one (near-uniform logits, entropy near log #alignments). Titles give the alignment entropy
from ``semiasr.functional``.

    python scripts/plot_alignments.py [--out docs/figures/alignment_posteriors.png]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from semiasr import functional as F

T, V = 24, 6
LABELS = [1, 3, 3, 5]  # a repeat: CTC needs a blank between the two 3s
SPIKES = [4, 9, 14, 19]  # frames where the peaky model emits each label


def ctc_logits(peaky: bool, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(1, T, V, generator=g, dtype=torch.float64)
    if peaky:
        x[0, :, 0] += 6.0
        for frame, label in zip(SPIKES, LABELS):
            x[0, frame, label] += 12.0
    return x.log_softmax(-1)


def rnnt_logits(peaky: bool, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u1 = len(LABELS) + 1
    x = 0.3 * torch.randn(1, T, u1, V, generator=g, dtype=torch.float64)
    if peaky:
        x[0, :, :, 0] += 6.0
        for u, (frame, label) in enumerate(zip(SPIKES, LABELS)):
            x[0, frame, u, label] += 12.0
            x[0, frame, u, 0] -= 6.0
    return x


def ctc_panel(ax, peaky: bool) -> None:
    lp = ctc_logits(peaky)
    args = (torch.tensor([LABELS]), [T], [len(LABELS)])
    occ = F.ctc_occupancy(lp, *args)[0]
    h = float(F.ctc_alignment_entropy(lp, *args)[0])
    ax.imshow(occ.T.numpy(), aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1)
    names = ["b"] + [n for y in LABELS for n in (str(y), "b")]
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("frame t")
    ax.set_ylabel("CTC state")
    kind = "peaky" if peaky else "diffuse"
    ax.set_title(f"CTC, {kind}: H = {h:.2f} nats")


def rnnt_panel(ax, peaky: bool) -> None:
    x = rnnt_logits(peaky)
    u = len(LABELS)
    args = (torch.tensor([LABELS]), [T], [u])
    occ = F.rnnt_occupancy(x, *args, blank=0)
    cell = (occ.blank + occ.label)[0]  # posterior of visiting (t, u)
    h = float(F.rnnt_alignment_entropy(x, *args, blank=0)[0])
    bound = math.log(math.comb(T - 1 + u, u))
    ax.imshow(cell.T.numpy(), aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(range(u + 1), ["∅"] + [f"{LABELS[i]}" for i in range(u)])
    ax.set_xlabel("frame t")
    ax.set_ylabel("labels emitted u")
    kind = "peaky" if peaky else "diffuse"
    ax.set_title(f"RNN-T, {kind}: H = {h:.2f} (max {bound:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/figures/alignment_posteriors.png")
    args = ap.parse_args()
    fig, axes = plt.subplots(2, 2, figsize=(10, 6), constrained_layout=True)
    for col, peaky in enumerate((True, False)):
        ctc_panel(axes[0, col], peaky)
        rnnt_panel(axes[1, col], peaky)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
