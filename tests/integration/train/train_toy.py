"""A toy model, objective and loader for the trainer's tests, and a script that trains them.

Every random source of a real run matters here: dropout draws from torch's generator, the loader
shuffles per epoch (its own generator, seeded by seed + epoch), and its augmentation draws from
NumPy's and Python's global generators. The tests copy this file into a temporary folder and run it
with ``python -m train_toy`` (alone, or under ``torch.distributed.run``); they also import it.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from semiasr.data.batch import Batch

N_FEATS, N_CLASSES = 6, 5


class ToyModel(nn.Module):
    """Mean-pooled frames → MLP with dropout → class logits. Objectives call encode/classify."""

    def __init__(self, hidden: int = 16, dropout: float = 0.2):
        super().__init__()
        self.inp = nn.Linear(N_FEATS, hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, N_CLASSES)

    def encode(self, features: Tensor, lengths: Tensor) -> Tensor:
        mask = (torch.arange(features.shape[1])[None, :] < lengths[:, None]).to(features.dtype)
        pooled = (features * mask[..., None]).sum(1) / lengths[:, None].to(features.dtype)
        return self.drop(torch.relu(self.inp(pooled)))

    def classify(self, hidden: Tensor) -> Tensor:
        return self.out(hidden)


def toy_objective(model: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Any]]:
    """Mean cross-entropy over the batch (a per-utterance mean, as DDP needs)."""
    logits = model.classify(model.encode(batch.features, batch.feature_lengths))
    target = batch.tokens[:, 0]
    loss = nn.functional.cross_entropy(logits.float(), target)
    acc = (logits.argmax(-1) == target).float().mean()
    return loss, {"acc": acc}


def make_items(n: int, seed: int = 1234) -> list[tuple[Tensor, int]]:
    g = torch.Generator().manual_seed(seed)
    items = []
    for _ in range(n):
        t = int(torch.randint(3, 9, (1,), generator=g))
        label = int(torch.randint(0, N_CLASSES, (1,), generator=g))
        feats = torch.randn(t, N_FEATS, generator=g) + 0.5 * label
        items.append((feats, label))
    return items


def collate(items: list[tuple[Tensor, int]], ids: list[int]) -> Batch:
    lengths = torch.tensor([f.shape[0] for f, _ in items], dtype=torch.int64)
    feats = torch.zeros(len(items), int(lengths.max()), N_FEATS)
    for i, (f, _) in enumerate(items):
        feats[i, : f.shape[0]] = f
    tokens = torch.tensor([[label] for _, label in items], dtype=torch.int64)
    return Batch(
        features=feats,
        feature_lengths=lengths,
        tokens=tokens,
        token_lengths=torch.ones(len(items), dtype=torch.int64),
        texts=[str(label) for _, label in items],
        domains=torch.zeros(len(items), dtype=torch.int64),
        cut_ids=[f"u{i}" for i in ids],
    )


class ToyLoader:
    """Shuffled batches of ``batch_size`` per rank: global batch g holds ``world`` consecutive
    shards of the epoch's permutation, rank r takes shard r. Augments with NumPy/Python global
    randomness.

    ``state_dict()`` is the position within the epoch; ``stateful=False`` hides it (the trainer
    then fast-forwards by counting). ``nan_batches``: global batch indices (counted since creation)
    whose features become NaN. ``stall_at``: the batch index (since creation) at which the loader
    writes ``stall_file`` and sleeps, waiting to be killed.
    """

    def __init__(
        self,
        items: list[tuple[Tensor, int]],
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        augment: bool = True,
        stateful: bool = True,
        nan_batches: frozenset[int] = frozenset(),
        stall_at: int = -1,
        stall_file: str = "",
    ):
        self.items, self.batch_size, self.seed = items, batch_size, seed
        self.rank, self.world, self.augment = rank, world, augment
        self.nan_batches, self.stall_at, self.stall_file = nan_batches, stall_at, stall_file
        self.epoch, self.position, self.drawn = 0, 0, 0
        if stateful:
            self.state_dict = lambda: {"epoch": self.epoch, "position": self.position}
            self.load_state_dict = self._load

    def _load(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position = epoch, 0

    def __len__(self) -> int:
        return len(self.items) // (self.batch_size * self.world)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.items), generator=g).tolist()
        if self.position >= len(self):  # like semiasr.data's loader: a finished epoch restarts
            self.position = 0
        start = self.position
        for b in range(start, len(self)):
            lo = (b * self.world + self.rank) * self.batch_size
            ids = order[lo : lo + self.batch_size]
            if self.drawn == self.stall_at:
                Path(self.stall_file).write_text("stalled")
                time.sleep(600)
            chosen = [self.items[i] for i in ids]
            if self.augment:
                chosen = [
                    (f + torch.from_numpy(np.random.normal(0, 0.1, f.shape)).float(), y)  # noqa: NPY002
                    for f, y in chosen
                ]
                scale = random.uniform(0.9, 1.1)
                chosen = [(f * scale, y) for f, y in chosen]
            batch = collate(chosen, ids)
            if self.drawn in self.nan_batches:
                batch.features[:] = float("nan")
            self.position, self.drawn = b + 1, self.drawn + 1
            yield batch


def build(args: argparse.Namespace, rank: int = 0, world: int = 1):
    """Model, optimizer, scheduler and loader, seeded, for the script and the tests alike."""
    from semiasr.train import set_seed

    set_seed(args.seed)
    model = ToyModel(dropout=args.dropout)
    if args.optim == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 4))
    loader = ToyLoader(
        make_items(args.items),
        args.batch_size,
        seed=args.seed,
        rank=rank,
        world=world,
        augment=args.augment,
        stall_at=args.stall_at,
        stall_file=args.stall_file,
    )
    return model, opt, sched, loader


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--run-root", default="runs")
    p.add_argument("--name", default="toy")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--max-steps", type=int, default=12)
    p.add_argument("--ckpt-every", type=int, default=3)
    p.add_argument("--accum", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--items", type=int, default=28)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--optim", default="adamw")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--stall-at", type=int, default=-1)
    p.add_argument("--stall-file", default="stalled")
    p.add_argument("--out", default="final.pt")
    p.add_argument("--resume-at", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=0, help="evaluate (on rank 0 only) every N")
    return p


def _trainer(args: argparse.Namespace, max_steps: int, resume: bool, scramble: bool = False):
    from semiasr.rundir import RunDir, open_run_dir
    from semiasr.train import TrainConfig, Trainer, dist_info, set_seed

    info = dist_info()
    model, opt, sched, loader = build(args, info.rank, info.world_size)
    if scramble:  # a new process would start from other random states; resume must restore them
        set_seed(args.seed + 1000 + info.rank)
    cfg = TrainConfig(
        max_steps=max_steps,
        accum_steps=args.accum,
        grad_clip=args.grad_clip,
        precision="fp32",
        log_every=1,
        eval_every=args.eval_every,
        ckpt_every=args.ckpt_every,
        keep_last=100,
        progress=False,
    )
    # like the tasks: only rank 0 evaluates (the others pass None)
    evaluate = weight_norm if args.eval_every and info.rank == 0 else None
    if info.rank == 0:
        mode = "resume" if resume else "new"
        run = open_run_dir(args.run_root, args.name, "toy: true\n", mode=mode)
    else:
        run = RunDir(Path(args.run_root) / args.name, resumed=resume)
    trainer = Trainer(model, toy_objective, opt, sched, loader, cfg, run, evaluate, device="cpu")
    return trainer, model


def weight_norm(model: Any) -> dict[str, float]:
    """A stand-in evaluation: deterministic, and it touches no random state."""
    return {"weight_norm": float(sum(p.detach().norm() ** 2 for p in model.parameters()) ** 0.5)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train; with ``--resume-at K`` stop after K updates, rebuild model, optimizer and loader (the
    global generators scrambled) and resume from the checkpoint in the same process. Rank 0 saves
    the weights to ``--out``, rank r > 0 to ``--out`` + ``.rank<r>``."""
    import torch.distributed as dist

    from semiasr.train import shutdown_distributed

    args = parser().parse_args(argv)
    resume = args.resume
    if args.resume_at > 0:
        trainer, _ = _trainer(args, args.resume_at, resume)
        trainer.fit()
        if dist.is_initialized():
            dist.barrier()
        resume = True
    trainer, model = _trainer(args, args.max_steps, resume, scramble=args.resume_at > 0)
    summary = trainer.fit()
    result = {"steps": summary.steps, "epochs": summary.epochs, "resumed": summary.resumed_from}
    if trainer.dist.is_main:
        torch.save(model.state_dict(), args.out)
        print(json.dumps(result))
    else:  # every rank's weights, to check that they agree
        torch.save(model.state_dict(), f"{args.out}.rank{trainer.dist.rank}")
    shutdown_distributed()
    return result


if __name__ == "__main__":
    main()
