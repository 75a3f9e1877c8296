"""What the tasks share: the run's tokenizer and feature statistics, corpus preparation, ranks."""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from semiasr.data.features import GlobalStats
from semiasr.data.tokenizer import build_tokenizer, tokenizer_from_dict
from semiasr.errors import DataError
from semiasr.rundir import atomic_write_text

TOKENIZER_FILE = "tokenizer.json"
STATS_FILE = "feature_stats.json"


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the world size under ``torchrun`` (0 and 1 otherwise)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def prepare_corpus(cfg: Any, progress: bool = True) -> Path:
    """Make sure the corpus ``cfg.data`` names exists; the synthetic one is generated on first use
    (by rank 0 only; other ranks wait for it)."""
    root = Path(cfg.data.root)
    if cfg.data.corpus != "synth":
        if not root.exists():
            raise DataError(f"corpus folder {root} does not exist (data.root)", item=str(root))
        return root
    from semiasr.data.synth.corpus import ensure_corpus, is_complete

    rank, _ = rank_and_world()
    if rank == 0:
        return ensure_corpus(
            root, seed=cfg.data.synth_seed, scale=cfg.data.synth_scale, progress=progress
        )
    deadline = time.monotonic() + 1800
    while not is_complete(root):
        if time.monotonic() > deadline:
            raise DataError(
                "rank 0 did not finish generating the corpus in 30 minutes", item=str(root)
            )
        time.sleep(2)
    return root


def save_tokenizer(run_path: Path, tokenizer: Any) -> None:
    atomic_write_text(
        run_path / TOKENIZER_FILE, json.dumps(tokenizer.to_dict(), ensure_ascii=False) + "\n"
    )


def load_tokenizer(run_path: Path) -> Any:
    path = run_path / TOKENIZER_FILE
    if not path.is_file():
        raise DataError(
            f"no {TOKENIZER_FILE} in run {run_path}; was it trained by semiasr?", item=str(path)
        )
    return tokenizer_from_dict(json.loads(path.read_text(encoding="utf-8")))


def tokenizer_for_run(cfg: Any, run_path: Path, texts: list[str]) -> Any:
    """The run's tokenizer: the saved one when resuming, else trained on ``texts`` (deterministic,
    so every DDP rank builds the same)."""
    if (run_path / TOKENIZER_FILE).is_file():
        return load_tokenizer(run_path)
    return build_tokenizer(cfg.data, texts)


def save_stats(run_path: Path, stats: GlobalStats | None) -> None:
    if stats is not None:
        atomic_write_text(run_path / STATS_FILE, json.dumps(stats.to_dict()) + "\n")


def load_stats(run_path: Path) -> GlobalStats | None:
    path = run_path / STATS_FILE
    return GlobalStats.from_dict(json.loads(path.read_text())) if path.is_file() else None


def training_data_config(cfg: Any, log: logging.Logger | None = None) -> Any:
    """``cfg.data``, with ``min_utt_duration`` raised (in a copy) to what the model's front end needs
    for one encoder frame, after the fastest speed perturbation: a shorter training utterance has
    no alignment (its loss is inf and the update would be skipped), so the loader refuses it by
    name (or skips it under ``data.skip_bad``) instead."""
    from semiasr.models.config import resolve_model_config
    from semiasr.nn import min_input_frames

    data = cfg.data
    feats, aug = data.features, data.augment
    factor = resolve_model_config(cfg.model).subsampling
    frames = min_input_frames(factor)
    seconds = (float(feats.frame_length_ms) + (frames - 1) * float(feats.frame_shift_ms)) / 1000
    if aug.speed_perturb and aug.speed_factors:
        seconds *= max(1.0, *map(float, aug.speed_factors))
    seconds = round(seconds + 0.001, 4)  # a millisecond of slack for rounded manifest durations
    if float(data.min_utt_duration) >= seconds:
        return data
    if log is not None:
        log.info(
            "training utterances must last at least %.3f s (%d feature frames for the front end's "
            "%dx subsampling%s): data.min_utt_duration %.3f -> %.3f",
            seconds, frames, factor,
            ", after speed perturbation" if aug.speed_perturb else "",
            float(data.min_utt_duration), seconds,
        )  # fmt: skip
    out = copy.deepcopy(data)
    out.min_utt_duration = seconds
    return out


def check_setup(cfg: Any, splits: list[str], make_model: Any = None, fresh: bool = True) -> None:
    """Fail before a run directory is opened — before ``--overwrite`` deletes the old run — on
    what a config can get wrong: a training or validation split (or, for joint training,
    ``ssl.splits``) that does not exist or does not read, a model, an adaptation, an optimizer or
    a schedule that does not build, and (``fresh``: no checkpoint to resume from) a
    ``model.init_encoder`` that does not load into the encoder. The model is built on the
    ``meta`` device (no memory, no weights) by ``make_model(cfg)`` (default: the recogniser of
    ``cfg.model``); the real one is built after the tokenizer."""
    import torch

    from semiasr.data.manifest import load_split
    from semiasr.errors import ConfigError
    from semiasr.models import build_model
    from semiasr.optim import build_optimizer
    from semiasr.optim.schedules import build_scheduler

    joint = float(getattr(cfg.ssl, "joint_weight", 0.0) or 0.0) > 0
    if joint and not cfg.ssl.splits:
        raise ConfigError(
            "ssl.joint_weight > 0 needs ssl.splits: the unlabelled audio to train BEST-RQ on",
            key="ssl.splits",
        )
    more = [*cfg.data.valid, *(cfg.ssl.splits if joint else [])]
    for split in dict.fromkeys([*splits, *more]):
        load_split(cfg.data.root, split, skip_bad=cfg.data.skip_bad)
    with torch.device("meta"):
        if make_model is not None:
            model = make_model(cfg)
        else:
            model = build_model(cfg.model, 8, cfg.data.features.num_mel_bins)
        if fresh and cfg.model.init_encoder and hasattr(model, "encoder"):
            import warnings

            from semiasr.models.bestrq import load_encoder_weights

            with warnings.catch_warnings():  # keys and shapes are what is checked here
                warnings.filterwarnings("ignore", ".*copying from a non-meta parameter")
                load_encoder_weights(model.encoder, cfg.model.init_encoder)
        if cfg.base_run and cfg.adapt.method:
            from semiasr.adapt import prepare_adaptation

            prepare_adaptation(model, cfg.adapt)
    optim = copy.deepcopy(cfg.optim)
    if getattr(optim, "implementation", None) == "fused":  # no fused kernel for meta tensors
        optim.implementation = "auto"
    build_scheduler(build_optimizer(model, optim), cfg.sched, cfg.train.max_steps)
