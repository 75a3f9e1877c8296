"""Self-supervised pretraining of a recogniser's encoder with BEST-RQ (:mod:`semiasr.models.bestrq`).

The encoder is the one ``cfg.model`` describes, so a later ``semiasr train`` with
``model.init_encoder=<this run>`` starts from it. Audio only: the splits' transcripts are not
read. SpecAugment is switched off (the masks are BEST-RQ's own; the waveform augmentation and VTLP
stay as configured), and so is averaging of checkpoints: a later run reads the last step
checkpoint. Features are normalised with statistics of ``ssl.splits`` (kept in the run's
``feature_stats.json``); a supervised run started from the encoder computes its own from its
training data. Validation (``data.valid``, every ``train.eval_every`` updates) reports the
masked-code accuracy under a fixed mask and the loss; ``best.pt`` is the checkpoint with the highest
accuracy (``train.best_metric=ssl_loss``: the lowest loss).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from semiasr.config import as_object
from semiasr.data.loader import build_dataloader
from semiasr.errors import ConfigError
from semiasr.models.bestrq import BestRQ
from semiasr.models.build import build_encoder, count_parameters
from semiasr.models.config import resolve_model_config
from semiasr.objectives.bestrq import BestRQObjective, bestrq_loss
from semiasr.rundir import RunDir
from semiasr.tasks.common import prepare_corpus, rank_and_world, save_stats
from semiasr.tasks.train import fit, open_run
from semiasr.train import FitSummary, set_seed

__all__ = ["build_bestrq", "masked_accuracy_evaluator", "pretrain"]


def build_bestrq(cfg: Any) -> BestRQ:
    """The encoder of ``cfg.model`` with BEST-RQ heads and quantizer (``cfg.ssl``)."""
    model_cfg = resolve_model_config(cfg.model)
    feat_dim = cfg.data.features.num_mel_bins
    return BestRQ(build_encoder(model_cfg, feat_dim), feat_dim, model_cfg.subsampling, cfg.ssl)


def masked_accuracy_evaluator(loader: Any, limit_batches: int | None = 20, seed: int = 0):
    """An ``evaluate(model) -> {"masked_acc", "ssl_loss"}`` callback over the first
    ``limit_batches`` batches of ``loader``, with the same masks and noise at every evaluation
    (a generator seeded with ``seed``)."""

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        gen = torch.Generator(device=device).manual_seed(seed)
        loss_sum = correct = masked = 0.0
        k = None
        for batch in itertools.islice(loader, limit_batches):  # no batch read past the limit
            b = batch.to(device)
            out = model(b.features, b.feature_lengths, generator=gen)
            loss, right = bestrq_loss(out.logits, out.targets)
            n = float(out.mask.sum())
            k = out.targets.shape[-1]
            loss_sum += float(loss) * n
            correct += float(right)
            masked += n
        if not masked or k is None:
            return {}
        return {"masked_acc": correct / (masked * k), "ssl_loss": loss_sum / masked}

    return evaluate


def pretrain(
    cfg: Any, mode: str = "new", progress: bool = True, eval_batches: int | None = 20
) -> tuple[RunDir, FitSummary]:
    """Pretrain the encoder of ``cfg.model`` on the audio of ``cfg.ssl.splits`` (default
    ``cfg.data.train``). ``mode`` as for :func:`semiasr.tasks.train`."""
    cfg = as_object(cfg)
    # the masks are BEST-RQ's own, and the targets come from the features the loader gives
    cfg.data.augment.spec_augment = False
    # the encoder is taken from the end of pretraining: no average of checkpoints from a run
    # whose masked prediction keeps improving (a shipped recipe's average_last is for ASR)
    cfg.train.average_last = 0
    # best.pt: the highest masked-code accuracy (the supervised default "wer" means that here),
    # or the lowest validation loss
    modes = {
        "wer": ("masked_acc", "max"),
        "masked_acc": ("masked_acc", "max"),
        "ssl_loss": ("ssl_loss", "min"),
    }
    if cfg.train.best_metric not in modes:
        raise ConfigError(
            f"train.best_metric={cfg.train.best_metric} is not reported by pretraining; use "
            "masked_acc or ssl_loss",
            key="train.best_metric",
        )
    cfg.train.best_metric, cfg.train.best_mode = modes[cfg.train.best_metric]
    set_seed(cfg.seed)
    rank, world = rank_and_world()
    prepare_corpus(cfg, progress=progress and rank == 0)
    splits = list(cfg.ssl.splits or cfg.data.train)
    run = open_run(cfg, mode, splits, build_bestrq)
    loader = build_dataloader(
        cfg.data, splits, None, train=True, seed=cfg.seed, rank=rank, world_size=world, labels=False
    )
    stats = loader.feature_stats
    model = build_bestrq(cfg)
    if rank == 0:
        save_stats(run.path, stats)
        run.logger().info(
            "BEST-RQ pretraining of a %s encoder (%.2fM parameters, heads %.2fM) on %s; "
            "masks: start p %.4f per stacked frame, span %d stacked frames",
            cfg.model.preset,
            count_parameters(model.encoder) / 1e6,
            count_parameters(model.heads) / 1e6,
            ", ".join(splits),
            model.start_prob,
            model.span,
        )
    evaluate = None
    if rank == 0 and cfg.data.valid:
        valid = build_dataloader(
            cfg.data, list(cfg.data.valid), None, train=False, labels=False, feature_stats=stats
        )
        evaluate = masked_accuracy_evaluator(valid, eval_batches, seed=cfg.seed)
    summary = fit(
        cfg, run, model, BestRQObjective(), None, loader, stats, progress, evaluate=evaluate
    )
    return run, summary
