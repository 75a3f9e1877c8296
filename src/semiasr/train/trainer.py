"""The training loop: accumulation, clipping, bf16, DDP, checkpoints, exact resume, reporting.

One update (``step``) consumes ``accum_steps`` micro-batches b_1 … b_A and applies

    g = (1/A) Σ_a ∇ L(b_a)          (DDP: averaged over the W ranks as well)
    g ← g · min(1, c / ‖g‖₂)         (clipping at ``grad_clip`` = c)
    θ ← optimizer(θ, g);  scheduler.step()

unless L or ‖g‖ is not finite: then the update is skipped (gradients zeroed, neither optimizer nor
scheduler steps) and counted, and training stops with :class:`NonFiniteLossError` after
``max_bad_steps`` consecutive (or ``max_bad_steps_total`` in all) skipped updates.

Exact resume: a checkpoint holds the model, optimizer and scheduler states, the step and epoch, and
per rank the random-number state and the loader's position (``loader.state_dict()``, or the count of
batches drawn this epoch for loaders without one). Resuming restores all of it, so a run that was
killed and resumed ends with the same weights as one that never stopped."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from semiasr.errors import CheckpointError, ConfigError, DataError, SemiasrError
from semiasr.rundir import RunDir, atomic_write_text
from semiasr.train.checkpoint import (
    FORMAT,
    CheckpointManager,
    average_checkpoints,
    checkpoint_to_bytes,
    load_checkpoint,
    load_model_state,
    save_checkpoint,
)
from semiasr.train.config import TrainConfig
from semiasr.train.distributed import (
    DistInfo,
    ObjectiveModule,
    all_gather_objects,
    init_distributed,
)
from semiasr.train.progress import ProgressBar, Throughput, batch_size_of
from semiasr.train.runtime import (
    autocast,
    flush_denormal,
    resolve_device,
    resolve_precision,
    rng_state,
    set_rng_state,
)

__all__ = ["FitSummary", "NonFiniteLossError", "Trainer"]

Objective = Callable[[nn.Module, Any], "tuple[Tensor, Mapping[str, Any]]"]
Evaluate = Callable[[nn.Module], Mapping[str, Any]]


class NonFiniteLossError(SemiasrError, RuntimeError):
    """Too many updates in a row (or in all) had a loss or gradient that was NaN or infinite."""


@dataclass
class FitSummary:
    """What :meth:`Trainer.fit` did. ``final_loss`` is the loss of the last update (mean over
    ranks)."""

    steps: int
    epochs: int
    final_loss: float | None
    best_metric: float | None
    best_step: int | None
    wall_time_s: float
    bad_steps: int
    interrupted: bool
    precision: str
    resumed_from: str | None = None
    last_checkpoint: str | None = None
    averaged_checkpoint: str | None = None
    # wall time of the whole run: this fit's plus what the resumed checkpoint had recorded
    total_wall_time_s: float | None = None


def _validate(cfg: TrainConfig) -> None:
    checks = [
        ("max_steps", cfg.max_steps >= 1, "at least 1"),
        ("max_epochs", cfg.max_epochs >= 0, "0 (no limit) or more"),
        ("accum_steps", cfg.accum_steps >= 1, "at least 1"),
        ("log_every", cfg.log_every >= 1, "at least 1"),
        ("eval_every", cfg.eval_every >= 0, "0 (off) or more"),
        ("ckpt_every", cfg.ckpt_every >= 0, "0 (off) or more"),
        ("keep_last", cfg.keep_last >= 1, "at least 1"),
        ("average_last", cfg.average_last >= 0, "0 (off) or more"),
        ("max_bad_steps", cfg.max_bad_steps >= 1, "at least 1"),
        ("max_bad_steps_total", cfg.max_bad_steps_total >= 0, "0 (no limit) or more"),
        ("best_mode", cfg.best_mode in ("min", "max"), "'min' or 'max'"),
        ("frame_shift_s", cfg.frame_shift_s > 0, "positive"),
    ]
    for key, ok, need in checks:
        if not ok:
            value = getattr(cfg, key)
            raise ConfigError(f"train.{key} must be {need}, got {value!r}", key=f"train.{key}")


def _scalar(value: Any) -> float | None:
    if isinstance(value, Tensor):
        return float(value.detach().float().mean()) if value.numel() > 0 else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


class _Window:
    """Sums of losses and objective metrics over the updates since the last log line, and where
    the wall-clock time went, per update (skipped non-finite ones included): waiting for the loader
    (``data_s``) and forward, backward and update (``compute_s``; evaluation, checkpoints and
    logging are in neither). These are this rank's; the log line gets their means over the ranks
    (``compute_s`` includes waiting for the other ranks in the all-reduce)."""

    def __init__(self) -> None:
        self.n = 0
        self.loss = 0.0
        self.metrics: dict[str, float] = {}
        self.data_s = 0.0
        self.compute_s = 0.0
        self.timed = 0  # updates the two times cover, skipped ones included

    def add(self, loss: float, metrics: Mapping[str, float]) -> None:
        self.n += 1
        self.loss += loss
        for k, v in metrics.items():
            self.metrics[k] = self.metrics.get(k, 0.0) + v

    def reset(self) -> None:
        self.__init__()

    def means(self) -> dict[str, float]:
        n = max(self.n, 1)
        # the trainer's loss (averaged over ranks) wins over an objective metric named "loss"
        return {
            **{k: v / n for k, v in self.metrics.items()},
            "loss": self.loss / n,
            "data_s": self.data_s / max(self.timed, 1),
            "compute_s": self.compute_s / max(self.timed, 1),
        }


def _mean_over_ranks(per_rank: list[dict[str, float]]) -> dict[str, float]:
    """Each key's mean over the ranks that logged it (``loss`` is already the same on every rank:
    the mean of the ranks' losses)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for means in per_rank:
        for k, v in means.items():
            sums[k] = sums.get(k, 0.0) + v
            counts[k] = counts.get(k, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}


class Trainer:
    """Trains ``model`` with ``objective(model, batch) -> (loss, metrics)`` on ``train_loader``.

    The loader yields batch objects with ``.to(device)`` (:class:`semiasr.data.batch.Batch`); it may
    offer ``set_epoch(e)`` (called at each epoch start) and ``state_dict()`` / ``load_state_dict()``
    (its position within the epoch, for exact mid-epoch resume: on resume the trainer calls
    ``set_epoch(e)``, then ``load_state_dict(saved)``, then ``iter``). ``scheduler`` steps once per
    update. ``evaluate(model) -> {name: value}`` runs on rank 0 every ``eval_every`` updates (under
    ``torch.no_grad``, model in eval mode); its ``config.best_metric`` chooses ``best.pt``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the trainer joins the process group (NCCL on CUDA, gloo
    on CPU) and wraps :class:`ObjectiveModule` (model + objective) in ``DistributedDataParallel``;
    each rank must be given its own shard of the data. Rank 0 writes checkpoints, metrics and logs.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        optimizer: torch.optim.Optimizer,
        scheduler: Any | None,
        train_loader: Iterable[Any],
        config: TrainConfig,
        run_dir: RunDir,
        evaluate: Evaluate | None = None,
        device: str | torch.device = "auto",
    ):
        _validate(config)
        self.config = config
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.dist: DistInfo = init_distributed(self.device)
        self.model = model.to(self.device)
        if isinstance(objective, nn.Module):
            objective.to(self.device)
        self.objective = objective
        self.module = ObjectiveModule(self.model, objective)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.loader = train_loader
        self.run_dir = run_dir
        self.evaluate = evaluate
        self._evaluates = evaluate is not None  # on any rank: set again (collectively) by fit
        self.precision = resolve_precision(config.precision, self.device)
        self.checkpoints = CheckpointManager(
            run_dir.checkpoints, max(config.keep_last, config.average_last)
        )
        self.log = logging.getLogger(
            "semiasr.train" if self.dist.is_main else f"semiasr.train.rank{self.dist.rank}"
        )
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.bad_total = 0
        self.bad_consecutive = 0
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.last_loss: float | None = None
        self._seconds_before = 0.0  # training time recorded by the checkpoint resumed from
        self._fit_started: float | None = None
        self._ddp: nn.Module | None = None
        self._pending: dict[str, Any] | None = None
        self._stop_signal: int | None = None
        self._saved_step = -1

    # ----------------------------------------------------------------------------------- public

    def fit(self, resume: bool | None = None) -> FitSummary:
        """Train up to ``config.max_steps`` updates. ``resume`` (default: ``run_dir.resumed``)
        continues from the newest ``step-N.pt``; returns a :class:`FitSummary`."""
        if self.dist.is_main:
            self.log = self.run_dir.logger("semiasr.train")  # adds this run's log.txt
        # On a CPU, subnormal floats (a few % of an fp32 RNN-T logit gradient) make matmuls several
        # times slower; measured in benchmarks/train_throughput.py: backward 9.1 s → 4.9 s when
        # flushed to zero. Only while training: the caller's mode is back when fit returns.
        flush = flush_denormal() if self.device.type == "cpu" else contextlib.nullcontext()
        try:
            with flush:
                return self._fit(resume)
        finally:
            self._close_log()

    def _fit(self, resume: bool | None) -> FitSummary:
        t0 = self._fit_started = time.perf_counter()
        self._evaluates = any(all_gather_objects(self.evaluate is not None))
        resumed_from = None
        if resume if resume is not None else self.run_dir.resumed:
            latest = self.checkpoints.latest()
            if latest is not None:
                self.load_checkpoint(latest)
                resumed_from = str(latest)
        if self.dist.is_main:
            self.checkpoints.remove_temporaries()
            if resumed_from is not None:
                self._drop_metrics_after(self.step)
        self.log.info(
            "training on %s (%s, world size %d) from step %d, epoch %d%s",
            self.device,
            self.precision,
            self.dist.world_size,
            self.step,
            self.epoch,
            f", resumed from {resumed_from}" if resumed_from else "",
        )
        start_step = self.step
        writers = self._open_writers()
        bar = ProgressBar(
            self.config.max_steps, self.step, self.config.progress and self.dist.is_main
        )
        old_handlers = self._install_signal_handlers()
        try:
            self._loop(writers, bar)
        finally:
            self._restore_signal_handlers(old_handlers)
            bar.close()
            for w in writers.values():
                w.close()
        interrupted = self._stop_signal is not None
        last = self.checkpoints.latest()
        if self.step > 0 and self._saved_step != self.step:
            last = self.save_checkpoint()
        averaged = None
        if self.config.average_last > 0 and not interrupted:
            averaged = self._write_average()
        stale = self.checkpoints.averaged_path
        if averaged is None and self.step > start_step and self.dist.is_main and stale.is_file():
            # an average of older steps (averaging off now, or the run was interrupted): no
            # "averaged" checkpoint is better than one that silently stands for older weights
            stale.unlink()
            self.log.info("removed %s: it averaged steps before %d", stale, start_step + 1)
        if self.dist.distributed:
            dist.barrier()
            self._ddp = None  # free DDP's reducer now, not after the process group is destroyed
            gc.collect()
        summary = FitSummary(
            steps=self.step,
            epochs=self.epoch,
            final_loss=self.last_loss,
            best_metric=self.best_value,
            best_step=self.best_step,
            wall_time_s=time.perf_counter() - t0,
            total_wall_time_s=self._seconds_before + time.perf_counter() - t0,
            bad_steps=self.bad_total,
            interrupted=interrupted,
            precision=self.precision,
            resumed_from=resumed_from,
            last_checkpoint=str(last) if last else None,
            averaged_checkpoint=str(averaged) if averaged else None,
        )
        self.log.info("finished: %s", summary)
        return summary

    def state_dict(self) -> dict[str, Any]:
        """This rank's view of a checkpoint; ``ranks`` holds every rank's RNG and loader position
        (a collective call under DDP: every rank must make it)."""
        loader_state = self.loader.state_dict() if hasattr(self.loader, "state_dict") else None
        mine = {
            "rng": rng_state(),
            "epoch": self.epoch,
            "loader": loader_state,
            "batch_in_epoch": self.batch_in_epoch,
        }
        if self.batch_in_epoch == 0:  # nothing drawn in self.epoch yet: its start (the loop
            mine.update(loader=None)  # has moved on, while the loader still reports the last one)
        elif self._epoch_finished(loader_state):  # store "the start of the next epoch" instead
            mine.update(epoch=self.epoch + 1, loader=None, batch_in_epoch=0)
        ranks = all_gather_objects(mine)
        state: dict[str, Any] = {
            "format": FORMAT,
            "step": self.step,
            "epoch": ranks[0]["epoch"],
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "trainer": {
                "bad_total": self.bad_total,
                "bad_consecutive": self.bad_consecutive,
                "best_value": self.best_value,
                "best_step": self.best_step,
                "last_loss": self.last_loss,
                "world_size": self.dist.world_size,
                "train_seconds": self._seconds_before
                + (time.perf_counter() - self._fit_started if self._fit_started else 0.0),
            },
            "ranks": ranks,
        }
        if isinstance(self.objective, nn.Module):
            state["objective"] = self.objective.state_dict()
        return state

    def save_checkpoint(self, best: bool = False) -> Path | None:
        """Write ``step-N.pt`` (and ``best.pt`` when ``best``) on rank 0; collective under DDP."""
        state = self.state_dict()
        if not self.dist.is_main:
            self._saved_step = self.step
            return None
        data = checkpoint_to_bytes(state)
        path = self.checkpoints.write_step(self.step, data)
        if best:
            self.checkpoints.write_best(data)
        self._saved_step = self.step
        self.log.info("saved %s%s", path, " (best)" if best else "")
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore everything :meth:`state_dict` saved; the RNG and loader position are applied when
        the next epoch iterator is built, just before the first batch is drawn."""
        ckpt = load_checkpoint(path)
        if ckpt.get("format") != FORMAT:
            raise CheckpointError(
                f"checkpoint {path} is not a semiasr trainer checkpoint (format "
                f"{ckpt.get('format')!r}, expected {FORMAT!r})"
            )
        load_model_state(self.model, ckpt["model"], source=f"checkpoint {path}")
        had = bool(ckpt.get("objective"))
        if had != (isinstance(self.objective, nn.Module) and bool(self.objective.state_dict())):
            saved = "with" if had else "without"
            raise CheckpointError(
                f"checkpoint {path} was saved {saved} an objective that has weights of its own "
                "(such as the BEST-RQ head of ssl.joint_weight > 0), this run's objective "
                f"{'has none' if saved == 'with' else 'has some'}: resume with the settings it "
                "was trained with"
            )
        if isinstance(self.objective, nn.Module) and "objective" in ckpt:
            load_model_state(
                self.objective, ckpt["objective"], source=f"checkpoint {path} objective"
            )
        self._load_optim_states(ckpt, path)
        self.step, self.epoch = int(ckpt["step"]), int(ckpt["epoch"])
        t = ckpt["trainer"]
        self.bad_total, self.bad_consecutive = int(t["bad_total"]), int(t["bad_consecutive"])
        self.best_value, self.best_step = t["best_value"], t["best_step"]
        self.last_loss = t.get("last_loss")
        self._seconds_before = float(t.get("train_seconds", 0.0))
        self._saved_step = self.step
        ranks = ckpt["ranks"]
        if len(ranks) == self.dist.world_size:
            self._pending = dict(ranks[self.dist.rank])
        else:
            # the loader may re-shard its position (semiasr.data's does); the random state cannot be
            old, new = len(ranks), self.dist.world_size
            self.log.warning(
                "checkpoint %s was written by %d rank(s), this job has %d: the data position is "
                "re-sharded from rank 0's, the random state is not restored",
                path,
                old,
                new,
            )
            first = ranks[0]
            self._pending = {
                **first,
                "rng": None,
                "batch_in_epoch": int(first["batch_in_epoch"]) * old // new,
            }
        self.epoch = int(self._pending.get("epoch", self.epoch))
        self.batch_in_epoch = int(self._pending["batch_in_epoch"])

    def _epoch_finished(self, loader_state: Any) -> bool:
        """Whether the batch just drawn was the epoch's last (known only for loaders with a length).

        A checkpoint taken there records the start of the next epoch: a loader asked to resume at
        its end position may otherwise restart the finished epoch (``semiasr.data``'s does)."""
        try:
            n = len(self.loader)  # type: ignore[arg-type]
        except TypeError:
            return False
        if isinstance(loader_state, Mapping) and isinstance(loader_state.get("position"), int):
            return loader_state["position"] >= n
        return self.batch_in_epoch >= n

    # ------------------------------------------------------------------------------ the loop

    def _loop(self, writers: dict[str, Any], bar: ProgressBar) -> None:
        cfg = self.config
        wrapped = self._wrapped()
        wrapped.train()
        self.optimizer.zero_grad(set_to_none=True)
        window, speed = _Window(), Throughput()
        micro, acc = 0, self._new_accumulator()
        while self.step < cfg.max_steps and not (cfg.max_epochs and self.epoch >= cfg.max_epochs):
            fresh = self._pending is None
            drew_any = False
            waited = time.perf_counter()
            for batch in self._epoch_batches():
                drew_any = True
                started = time.perf_counter()
                window.data_s += started - waited
                self.batch_in_epoch += 1
                micro += 1
                self._micro_step(wrapped, batch, acc, last=micro == cfg.accum_steps)
                window.compute_s += time.perf_counter() - started
                if micro < cfg.accum_steps:
                    waited = time.perf_counter()
                    continue
                micro = 0
                done = self._update(acc, window, speed, writers, bar)
                acc = self._new_accumulator()
                if done:
                    return
                waited = time.perf_counter()
            if fresh and not drew_any:
                raise DataError(f"the training loader yielded no batches in epoch {self.epoch}")
            self.epoch += 1
            self.batch_in_epoch = 0

    def _epoch_batches(self) -> Iterator[Any]:
        """Start (or, after a resume, continue) the current epoch of the loader."""
        loader, pending, self._pending = self.loader, self._pending, None
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(self.epoch)
        skip = 0
        if pending is not None:
            if pending["loader"] is not None and hasattr(loader, "load_state_dict"):
                loader.load_state_dict(pending["loader"])
            else:
                skip = int(pending["batch_in_epoch"])
        it = iter(loader)
        for _ in range(skip):
            if next(it, None) is None:
                break
        if pending is not None and pending["rng"] is not None:
            set_rng_state(pending["rng"])
        return it

    def _new_accumulator(self) -> dict[str, Any]:
        return {"loss": 0.0, "audio": 0.0, "items": 0.0, "metrics": {}}

    def _micro_step(self, wrapped: nn.Module, batch: Any, acc: dict[str, Any], last: bool) -> None:
        """Forward and backward of one micro-batch; gradients are all-reduced on the last one.

        Losses and metrics stay on the device until the update (no host sync per micro-batch)."""
        audio, items = batch_size_of(batch, self.config.frame_shift_s)  # before the copy
        batch = batch.to(self.device) if hasattr(batch, "to") else batch
        sync = contextlib.nullcontext()
        if isinstance(wrapped, DistributedDataParallel) and not last:
            sync = wrapped.no_sync()
        with sync:
            with autocast(self.device, self.precision):
                loss, metrics = wrapped(batch)
            scaled = loss.float() / self.config.accum_steps
            scaled.backward()
        acc["loss"] = acc["loss"] + scaled.detach()
        acc["audio"] += audio
        acc["items"] += items
        for k, v in (metrics or {}).items():
            if isinstance(v, Tensor) and v.numel() > 0:
                v = v.detach().float().mean()
            elif not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            acc["metrics"][k] = acc["metrics"].get(k, 0.0) + v / self.config.accum_steps

    def _update(
        self,
        acc: dict[str, Any],
        window: _Window,
        speed: Throughput,
        writers: dict[str, Any],
        bar: ProgressBar,
    ) -> bool:
        """Clip, check, step; then log, evaluate and checkpoint as due. True when training ends."""
        cfg = self.config
        started = time.perf_counter()
        params = [p for p in self.module.parameters() if p.grad is not None]
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm)) if params else 0.0
        local_loss = float(acc["loss"])
        local_bad = not (math.isfinite(local_loss) and math.isfinite(grad_norm))
        bad, stop, audio, items, loss = self._agree(
            local_bad, acc["audio"], acc["items"], local_loss
        )
        speed.add(audio, items)
        window.timed += 1
        if bad:
            self._skip_bad_step(loss, grad_norm)
            window.compute_s += time.perf_counter() - started
        else:
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            self.bad_consecutive = 0
            self.last_loss = loss
            window.add(loss, {k: float(v) for k, v in acc["metrics"].items()})
            window.compute_s += time.perf_counter() - started
            self._after_update(window, speed, grad_norm, writers, bar)
        if stop:
            self.log.warning(
                "signal %s received: stopping at step %d", self._stop_signal, self.step
            )
            self._stop_signal = self._stop_signal or signal.SIGINT
            return True
        return self.step >= cfg.max_steps

    def _agree(self, bad: bool, audio: float, items: float, loss: float) -> tuple:
        """Make every rank take the same decision (skip? stop?) and see global counts."""
        stop = self._stop_signal is not None
        if not self.dist.distributed:
            return bad, stop, audio, items, loss
        t = torch.tensor(
            [float(bad), float(stop), audio, items, loss if math.isfinite(loss) else 0.0],
            dtype=torch.float64,
            device=self.device,
        )
        dist.all_reduce(t)
        world = self.dist.world_size
        return bool(t[0] > 0), bool(t[1] > 0), float(t[2]), float(t[3]), float(t[4]) / world

    def _skip_bad_step(self, loss: float, grad_norm: float) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.bad_total += 1
        self.bad_consecutive += 1
        cfg = self.config
        self.log.warning(
            "skipped an update after step %d: loss %s, gradient norm %s (%d in a row, %d in all)",
            self.step,
            loss,
            grad_norm,
            self.bad_consecutive,
            self.bad_total,
        )
        if self.bad_consecutive >= cfg.max_bad_steps or (
            cfg.max_bad_steps_total and self.bad_total >= cfg.max_bad_steps_total
        ):
            raise NonFiniteLossError(
                f"training stopped at step {self.step}: {self.bad_consecutive} consecutive and "
                f"{self.bad_total} total updates had a non-finite loss or gradient (limits: "
                f"train.max_bad_steps={cfg.max_bad_steps}, "
                f"train.max_bad_steps_total={cfg.max_bad_steps_total}); lower the learning rate, "
                "check the data for empty or over-long utterances, or try precision=fp32"
            )

    def _after_update(
        self,
        window: _Window,
        speed: Throughput,
        grad_norm: float,
        writers: dict[str, Any],
        bar: ProgressBar,
    ) -> None:
        cfg, step = self.config, self.step
        if step % cfg.log_every == 0:
            # every rank reaches this step together: the metrics become means over the ranks
            means = _mean_over_ranks(all_gather_objects(window.means()))
            window.reset()
        if step % cfg.log_every == 0 and self.dist.is_main:
            record = {
                "split": "train",
                "step": step,
                "epoch": self.epoch,
                **means,
                "lr": _base_lr(self.optimizer),
                "grad_norm": grad_norm,
                "bad_steps": self.bad_total,
                **speed.rate(),
            }
            self._write_metrics(writers, record)
            bar.update(step, record["loss"], {k: record[k] for k in record if k.endswith("_per_s")})
        else:
            bar.update(step)
        # the same decision on every rank (the tasks give rank 0 alone an ``evaluate``): the
        # checkpoint that follows an evaluation is a collective call
        eval_due = self._evaluates and bool(
            (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.max_steps
        )
        best = self._run_evaluation(writers) if eval_due else False
        if (cfg.ckpt_every and step % cfg.ckpt_every == 0) or eval_due:
            self.save_checkpoint(best=best)

    def _run_evaluation(self, writers: dict[str, Any]) -> bool:
        """Evaluate on rank 0; True when this is the best value of ``best_metric`` so far."""
        if not self.dist.is_main or self.evaluate is None:
            return False
        self.model.eval()
        try:
            with torch.no_grad():
                result = dict(self.evaluate(self.model))
        finally:
            self.module.train()
        scalars = {k: s for k, v in result.items() if (s := _scalar(v)) is not None}
        self._write_metrics(writers, {"split": "eval", "step": self.step, **scalars})
        value = scalars.get(self.config.best_metric)
        if value is None or not math.isfinite(value):
            return False
        better = (
            self.best_value is None
            or (self.config.best_mode == "min" and value < self.best_value)
            or (self.config.best_mode == "max" and value > self.best_value)
        )
        if better:
            self.best_value, self.best_step = value, self.step
        return better

    # ------------------------------------------------------------------------------- helpers

    def _wrapped(self) -> nn.Module:
        if self._ddp is None:
            if self.dist.distributed:
                self._ddp = DistributedDataParallel(
                    self.module,
                    device_ids=[self.device.index] if self.device.type == "cuda" else None,
                    find_unused_parameters=self.config.find_unused_parameters,
                )
            else:
                self._ddp = self.module
        return self._ddp

    def _load_optim_states(self, ckpt: Mapping[str, Any], path: str | Path) -> None:
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"checkpoint {path}: optimizer state does not fit: {e}") from e
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            try:
                self.scheduler.load_state_dict(ckpt["scheduler"])
            except (ValueError, KeyError, RuntimeError, TypeError) as e:
                raise CheckpointError(
                    f"checkpoint {path}: scheduler state does not fit: {e}"
                ) from e

    def _write_average(self) -> Path | None:
        if not self.dist.is_main:
            return None
        paths = [p for _, p in self.checkpoints.steps()[-self.config.average_last :]]
        averaged = average_checkpoints(paths)
        save_checkpoint(
            self.checkpoints.averaged_path,
            {
                "format": FORMAT,
                "step": self.step,
                "model": averaged,
                "averaged_from": [p.name for p in paths],
            },
        )
        self.log.info(
            "averaged %s into %s", [p.name for p in paths], self.checkpoints.averaged_path
        )
        return self.checkpoints.averaged_path

    def _open_writers(self) -> dict[str, Any]:
        if not self.dist.is_main:
            return {}
        writers: dict[str, Any] = {"jsonl": self.run_dir.metrics()}
        if self.config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self.log.warning("train.tensorboard=true but tensorboard is not installed; skipped")
            else:
                writers["tb"] = SummaryWriter(str(self.run_dir.path / "tensorboard"))
        return writers

    def _write_metrics(self, writers: dict[str, Any], record: dict[str, Any]) -> None:
        if "jsonl" in writers:
            writers["jsonl"].write(**record)
        if "tb" in writers:
            split, step = record["split"], record["step"]
            for k, v in record.items():
                if k not in ("split", "step") and isinstance(v, (int, float)):
                    writers["tb"].add_scalar(f"{split}/{k}", v, step)

    def _drop_metrics_after(self, step: int) -> None:
        """On resume, forget the metric lines of updates after the checkpoint (they are redone)."""
        path = self.run_dir.metrics_file
        if not path.is_file():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if int(json.loads(line).get("step", 0)) > step:
                    continue
            except (ValueError, AttributeError, TypeError):
                pass
            kept.append(line)
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))

    def _install_signal_handlers(self) -> dict[int, Any]:
        """First SIGINT/SIGTERM: finish the update, save a checkpoint, return. Second: abort."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        old: dict[int, Any] = {}

        def handler(signum: int, frame: Any) -> None:
            if self._stop_signal is not None:
                signal.signal(signum, old.get(signum, signal.SIG_DFL))
                raise KeyboardInterrupt
            self._stop_signal = signum

        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, handler)
        return old

    def _restore_signal_handlers(self, old: dict[int, Any]) -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    def _close_log(self) -> None:
        """Detach and close this run's ``log.txt`` handler, which ``RunDir.logger`` puts on the
        ``semiasr`` logger: left there, every later run in the process would write into it."""
        target = str(self.run_dir.log_file.resolve())
        root = logging.getLogger("semiasr")
        for h in list(root.handlers):
            if getattr(h, "baseFilename", None) == target:
                root.removeHandler(h)
                h.close()


def _base_lr(optimizer: torch.optim.Optimizer) -> float:
    """The scheduled base rate: group 0's, divided by its ``optim.lr_scales`` factor if it has one."""
    g = optimizer.param_groups[0]
    return float(g["lr"]) / float(g.get("lr_scale", 1.0))
