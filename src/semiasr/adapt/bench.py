"""What one training step costs under each adaptation method, on random data of a fixed shape:
trainable parameters (and their share of the encoder), the bytes autograd keeps for backward
(activation memory: every saved tensor that is not a parameter, counted once per storage), and the
step time (forward, RNN-T loss, backward, Adam step) as wall clock and as process CPU time (less
sensitive to other processes on a shared machine), measured round-robin across methods so that
load affects all of them alike. Run with OMP_NUM_THREADS=1 for a stable CPU time.

    OMP_NUM_THREADS=1 python -m semiasr.adapt.bench --preset xs --batch 8 --frames 400 \
        --rounds 5 --json bench.json

This is the cost side of the adaptation table; the quality side (WER after adaptation) needs the
trainer and a corpus.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from semiasr.adapt.config import METHODS
from semiasr.adapt.domains import DomainRoutedObjective
from semiasr.adapt.freeze import summary_rows
from semiasr.adapt.prepare import prepare_adaptation
from semiasr.data.batch import Batch
from semiasr.models.config import ModelConfig

__all__ = ["main", "measure", "saved_activation_bytes"]


def random_batch(b: int, frames: int, tokens: int, vocab: int, feat_dim: int = 80) -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(
        features=torch.randn(b, frames, feat_dim, generator=g),
        feature_lengths=torch.full((b,), frames),
        tokens=torch.randint(1, vocab, (b, tokens), generator=g),
        token_lengths=torch.full((b,), tokens),
        texts=[""] * b,
        domains=torch.ones(b, dtype=torch.long),  # all target domain (MDA trains domain 1)
        cut_ids=[f"u{i}" for i in range(b)],
    )


def saved_activation_bytes(model: nn.Module, loss_fn: Callable[[], Tensor]) -> int:
    """Bytes of the non-parameter tensors autograd saves while ``loss_fn()`` runs."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss_fn()
    return sum(seen.values())


def measure(
    methods: list[str], model_cfg: ModelConfig, batch: Batch, rounds: int, opts: dict[str, Any]
) -> list[dict[str, Any]]:
    """One row per method: params, trainable, % of encoder, saved bytes, median step seconds."""
    from semiasr.models import build_model
    from semiasr.objectives import objective_for

    setups = {}
    for method in methods:
        torch.manual_seed(0)
        model = build_model(model_cfg, vocab_size=64)
        prepare_adaptation(model, method, **opts.get(method, {}))
        objective = objective_for(model)
        if method == "mda":
            objective = DomainRoutedObjective(objective)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimiser = torch.optim.Adam(trainable, lr=1e-4)
        setups[method] = (model.train(), objective, optimiser)
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
    for r in range(rounds + 1):  # round 0 warms up
        for method, (model, objective, optimiser) in setups.items():
            wall, cpu = time.perf_counter(), time.process_time()
            optimiser.zero_grad(set_to_none=True)
            objective(model, batch)[0].backward()
            optimiser.step()
            if r:
                times[method].append((time.perf_counter() - wall, time.process_time() - cpu))
    rows = [_row(m, model, obj, batch, times[m]) for m, (model, obj, _) in setups.items()]
    full = next((r for r in rows if r["method"] == "full"), rows[0])
    for row in rows:
        row["step_vs_full"] = row["step_s"] / full["step_s"]
        row["cpu_vs_full"] = row["step_cpu_s"] / full["step_cpu_s"]
        row["saved_vs_full"] = row["saved_MiB"] / full["saved_MiB"]
    return rows


def _row(
    method: str,
    model: nn.Module,
    objective: Callable,
    batch: Batch,
    times: list[tuple[float, float]],
) -> dict[str, Any]:
    parts = {row.part: row for row in summary_rows(model)}
    encoder_side = [r for p, r in parts.items() if p in ("encoder", "fusion") or "[encoder]" in p]
    saved = saved_activation_bytes(model, lambda: objective(model, batch)[0])
    return {
        "method": method,
        "trainable": sum(r.trainable for r in parts.values()),
        "trainable_encoder_pct": 100.0
        * sum(r.trainable for r in encoder_side)
        / parts["encoder"].total,
        "saved_MiB": saved / 2**20,
        "step_s": statistics.median(w for w, _ in times),
        "step_cpu_s": statistics.median(c for _, c in times),
        "wall_s": [w for w, _ in times],
        "cpu_s": [c for _, c in times],
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'method':<14}{'trainable':>11}{'% enc':>8}{'saved MiB':>11}{'×full':>7}"
        f"{'step s':>9}{'×full':>7}{'cpu s':>8}{'×full':>7}"
    ]
    for r in rows:
        lines.append(
            f"{r['method']:<14}{r['trainable']:>11,}{r['trainable_encoder_pct']:>8.2f}"
            f"{r['saved_MiB']:>11.1f}{r['saved_vs_full']:>7.2f}"
            f"{r['step_s']:>9.3f}{r['step_vs_full']:>7.2f}"
            f"{r['step_cpu_s']:>8.3f}{r['cpu_vs_full']:>7.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="xs")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    batch = random_batch(args.batch, args.frames, args.tokens, vocab=64)
    opts = {"mda": {"num_domains": 2}}
    model_cfg = ModelConfig(preset=args.preset, dropout=0.0)
    rows = measure(args.methods.split(","), model_cfg, batch, args.rounds, opts)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "torch": torch.__version__, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
