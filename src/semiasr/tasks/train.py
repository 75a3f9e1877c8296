"""Supervised ASR training: corpus → tokenizer → loaders → model → objective → optimizer → Trainer."""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
from typing import Any

import torch

from semiasr.config import as_object, to_yaml
from semiasr.data.loader import build_dataloader, corpus_texts
from semiasr.eval import wer
from semiasr.models.build import build_model, count_parameters
from semiasr.objectives import objective_for
from semiasr.optim import build_optimizer, build_scheduler
from semiasr.optim.build import decay_groups
from semiasr.rundir import RunDir, has_results, open_run_dir, run_path
from semiasr.tasks.common import (
    check_setup,
    prepare_corpus,
    rank_and_world,
    save_stats,
    save_tokenizer,
    tokenizer_for_run,
    training_data_config,
)
from semiasr.train import FitSummary, Trainer, set_seed

log = logging.getLogger(__name__)


def open_run(
    cfg: Any,
    mode: str,
    splits: list[str] | None = None,
    make_model: Any = None,
    extra: dict | None = None,
) -> RunDir:
    """The run directory of ``cfg`` (created by rank 0; the other ranks only point at it), once
    :func:`~semiasr.tasks.common.check_setup` has passed on ``splits`` (default: the training
    splits) and the model (``make_model``), optimizer and schedule. ``extra``: more fields of
    meta.json."""
    fresh = mode != "resume" or not has_results(run_path(cfg.run_root, cfg.name))
    check_setup(cfg, list(cfg.data.train) if splits is None else splits, make_model, fresh)
    rank, _ = rank_and_world()
    if rank == 0:
        return open_run_dir(cfg.run_root, cfg.name, to_yaml(cfg), mode, extra)
    from pathlib import Path

    return RunDir(Path(cfg.run_root) / cfg.name, resumed=mode == "resume")


def make_wer_evaluator(
    loader: Any, tokenizer: Any, limit_batches: int | None = 20, cfg: Any = None
):
    """An ``evaluate(model) -> {"wer": %}`` callback: greedy decoding of the first ``limit_batches``
    batches of ``loader`` (routed by domain for MDA-adapted models when ``cfg`` says so)."""
    from semiasr.tasks.evaluate import routed

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        refs, hyps = [], []
        for batch in itertools.islice(loader, limit_batches):  # no batch read past the limit
            b = batch.to(device)
            with routed(model, cfg, b.domains) if cfg is not None else contextlib.nullcontext():
                ids = model.transcribe(b.features, b.feature_lengths)
            hyps += [tokenizer.decode(x) for x in ids]
            refs += list(b.texts)
        return {"wer": wer(refs, hyps)}

    return evaluate


def train(
    cfg: Any, mode: str = "new", progress: bool = True, eval_batches: int | None = 20
) -> tuple[RunDir, FitSummary]:
    """Train ``cfg.model`` on ``cfg.data.train``; validate WER on ``cfg.data.valid`` every
    ``train.eval_every`` steps (greedy, first ``eval_batches`` batches). ``mode``: "new", "resume",
    "overwrite" (see :func:`semiasr.rundir.open_run_dir`)."""
    cfg = as_object(cfg)
    set_seed(cfg.seed)
    rank, world = rank_and_world()
    prepare_corpus(cfg, progress=progress and rank == 0)
    run = open_run(cfg, mode)
    tokenizer = tokenizer_for_run(cfg, run.path, corpus_texts(cfg.data, list(cfg.data.train)))
    train_loader = build_dataloader(
        training_data_config(cfg, run.logger() if rank == 0 else None),
        list(cfg.data.train),
        tokenizer,
        train=True,
        seed=cfg.seed,
        rank=rank,
        world_size=world,
    )
    stats = train_loader.feature_stats
    if rank == 0:
        save_tokenizer(run.path, tokenizer)
        save_stats(run.path, stats)
    model = build_model(cfg.model, tokenizer.vocab_size, cfg.data.features.num_mel_bins)
    if cfg.model.init_encoder and not any((run.path / "checkpoints").glob("step-*.pt")):
        # (a run that resumes from its own checkpoint does not need the file any more)
        from semiasr.models.bestrq import load_encoder_weights

        source = load_encoder_weights(model.encoder, cfg.model.init_encoder)
        if rank == 0:
            run.logger().info("encoder initialised from %s", source)
    if rank == 0:
        run.logger().info(
            "model %s/%s: %.2fM parameters, vocab %d (%s tokenizer)",
            cfg.model.kind,
            cfg.model.preset,
            count_parameters(model) / 1e6,
            tokenizer.vocab_size,
            cfg.data.tokenizer.kind,
        )
    objective = objective_for(model)
    if cfg.ssl.joint_weight > 0:
        objective = joint_objective(cfg, model, objective, stats, rank, world)
    summary = fit(
        cfg,
        run,
        model,
        objective,
        tokenizer,
        train_loader,
        stats,
        progress,
        eval_batches,
    )
    return run, summary


def joint_objective(
    cfg: Any, model: torch.nn.Module, supervised: Any, stats: Any, rank: int, world: int
):
    """JUST-style joint training (``ssl.joint_weight`` > 0): ``supervised`` on the labelled batches
    plus BEST-RQ on the audio of ``ssl.splits`` through the same encoder
    (:class:`semiasr.objectives.JointObjective`); the unlabelled audio is normalised with the
    labelled training data's statistics, as it will be when the model decodes it."""
    from semiasr.errors import ConfigError
    from semiasr.models.bestrq import BestRQHead
    from semiasr.models.config import resolve_model_config
    from semiasr.objectives import JointObjective

    if not cfg.ssl.splits:
        raise ConfigError(
            "ssl.joint_weight > 0 needs ssl.splits: the unlabelled audio to train BEST-RQ on",
            key="ssl.splits",
        )
    data_cfg = copy.deepcopy(cfg.data)
    data_cfg.augment.spec_augment = False  # the masks are BEST-RQ's own
    if cfg.ssl.joint_batch_duration > 0:
        data_cfg.batching.max_duration = float(cfg.ssl.joint_batch_duration)
    unlabelled = build_dataloader(
        data_cfg,
        list(cfg.ssl.splits),
        None,
        train=True,
        seed=cfg.seed + 1,  # its own shuffle, not the labelled one's
        rank=rank,
        world_size=world,
        feature_stats=stats,
        labels=False,
    )
    head = BestRQHead(
        model.encoder.output_dim,
        cfg.data.features.num_mel_bins,
        resolve_model_config(cfg.model).subsampling,
        cfg.ssl,
    )
    return JointObjective(supervised, head, unlabelled, cfg.ssl.joint_weight)


def fit(
    cfg: Any,
    run: RunDir,
    model: torch.nn.Module,
    objective: Any,
    tokenizer: Any,
    train_loader: Any,
    stats: Any,
    progress: bool = True,
    eval_batches: int | None = 20,
    evaluate: Any = None,
) -> FitSummary:
    """Optimizer, schedule, a WER evaluator on ``cfg.data.valid`` (rank 0; or ``evaluate`` when
    given) and the Trainer, run to ``train.max_steps``: what training, pretraining and adaptation
    share once the model and data are chosen."""
    if evaluate is None and rank_and_world()[0] == 0 and cfg.data.valid:
        # references only: a validation text may hold a symbol training never saw
        valid = build_dataloader(
            cfg.data,
            list(cfg.data.valid),
            tokenizer,
            train=False,
            labels=False,
            feature_stats=stats,
        )
        evaluate = make_wer_evaluator(valid, tokenizer, eval_batches, cfg)
    optimizer = build_optimizer(model, cfg.optim)
    if isinstance(objective, torch.nn.Module):  # e.g. the BEST-RQ head of joint training
        for group in decay_groups(objective, float(cfg.optim.weight_decay)):
            optimizer.add_param_group(group)
    scheduler = build_scheduler(optimizer, cfg.sched, cfg.train.max_steps)
    if not progress:
        cfg.train.progress = False
    trainer = Trainer(
        model,
        objective,
        optimizer,
        scheduler,
        train_loader,
        cfg.train,
        run,
        evaluate=evaluate,
        device=cfg.device,
    )
    return trainer.fit()
