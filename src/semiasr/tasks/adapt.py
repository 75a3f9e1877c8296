"""Adapt a trained run to a new domain: load its model, add the method's modules, freeze the rest,
train on the target data, and write both a full checkpoint and an adaptation checkpoint that holds only
the trained parts (``adaptation.pt``, loadable on top of the base model with
:func:`semiasr.adapt.load_adaptation`)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

from semiasr.adapt import (
    DomainRoutedObjective,
    parameter_summary,
    prepare_adaptation,
    save_adaptation,
)
from semiasr.config import as_object, load_config, to_yaml
from semiasr.data.loader import build_dataloader
from semiasr.errors import ConfigError, RunDirError
from semiasr.models.build import build_model
from semiasr.objectives import objective_for
from semiasr.rundir import RunDir, has_results, resume_refusal, run_path
from semiasr.tasks.common import (
    STATS_FILE,
    TOKENIZER_FILE,
    load_stats,
    load_tokenizer,
    save_stats,
    training_data_config,
)
from semiasr.tasks.evaluate import checkpoint_of
from semiasr.tasks.train import fit, open_run
from semiasr.train import FitSummary, set_seed
from semiasr.train.checkpoint import load_checkpoint, load_model_state, model_state_of

ADAPTATION_FILE = "adaptation.pt"


def adaptation_config(
    base_run: str | Path, method: str, name: str, overrides: list[str] | tuple[str, ...] = ()
) -> Any:
    """The adaptation run's config: the base run's, with ``base_run``, ``adapt.method``, ``name``,
    target-domain defaults (train on ``target_train``) and fine-tuning defaults (300 updates of the
    base run's optimizer at a constant 1e-3, no warm-up, no checkpoint averaging, no joint
    self-supervised loss), then ``overrides``."""
    base = Path(base_run)
    if not (base / "config.yaml").is_file():
        raise ConfigError(f"{base} is not a semiasr run directory (no config.yaml)")
    defaults = [
        f"name={name}",
        f"base_run={base}",
        f"adapt.method={method}",
        "data.train=[target_train]",
        "data.valid=[target_dev]",
        "data.test=[source_test,target_test]",
        "train.max_steps=300",
        "optim.lr=0.001",
        "sched.name=constant",
        "sched.warmup_steps=0",
        "train.average_last=0",
        "optim.lr_scales={}",  # the base run's factors name parameters that may now be frozen
        "ssl.joint_weight=0",  # adaptation is supervised, whatever the base run trained with
    ]
    return as_object(load_config(base / "config.yaml", [*defaults, *overrides]))


def check_mda_domains(cfg: Any) -> None:
    """MDA over more than source and target routes by domain ids, which without ``data.domains``
    each loader numbers among the names its own splits hold: a test split could then reach
    another domain's modules. Refuse that before training."""
    if cfg.adapt.method == "mda" and int(cfg.adapt.num_domains) > 2 and not cfg.data.domains:
        raise ConfigError(
            f"MDA over {cfg.adapt.num_domains} domains needs data.domains (name: id), so that "
            "training and test splits give each domain the same id, e.g. "
            "data.domains={source: 0, target: 1, noisy: 2}",
            key="data.domains",
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


log = logging.getLogger(__name__)


def _resume_mode(cfg: Any, mode: str, ckpt: Path, digest: str, on_stale: str) -> str:
    """``mode``, or "overwrite" where the adaptation run to resume is stale and ``on_stale`` is
    "restart": trained from another version of the base checkpoint, or with a config that changes
    what its checkpoints fix or the data's augmentation (another recipe). With "refuse" a stale run
    is an error: resuming would continue the old adaptation on weights or settings it was not
    trained with."""
    path = run_path(cfg.run_root, cfg.name)
    if mode != "resume" or not (path.is_dir() and has_results(path)):
        return mode
    try:
        old = json.loads((path / "meta.json").read_text(encoding="utf-8")).get("base_sha256")
    except (OSError, ValueError, AttributeError):
        old = None
    new_base = old is not None and old != digest
    if new_base:
        why = f"{path} adapted another version of {ckpt} (the base run has trained since)"
    else:
        # restarting a stale run (the demo's own folder): its recipe includes the data's
        # augmentation, which a plain resume may change
        also = ("data.augment.",) if on_stale == "restart" else ()
        why = resume_refusal(path, to_yaml(cfg), also)
        if why is None:
            return mode
    if on_stale == "restart":
        log.warning("adapting afresh: %s", why)
        return "overwrite"
    if new_base:
        raise RunDirError(
            f"{why}: resuming would continue that adaptation on other weights; pass "
            "--overwrite to adapt afresh"
        )
    return mode  # open_run refuses the other config, with its own message


def adaptation_model(cfg: Any, ckpt: Path, vocab_size: int) -> tuple[Any, Any]:
    """(model, objective) as :func:`adapt` trains them: the model ``cfg.model`` describes with the
    base checkpoint ``ckpt``'s weights, prepared for ``cfg.adapt`` (its parameters frozen but the
    method's), and its training objective, routed by domain for MDA."""
    model = build_model(cfg.model, vocab_size, cfg.data.features.num_mel_bins)
    load_model_state(model, model_state_of(load_checkpoint(ckpt), str(ckpt)), str(ckpt))
    prepare_adaptation(model, cfg.adapt)
    objective: Any = objective_for(model)
    if cfg.adapt.method == "mda":
        objective = DomainRoutedObjective(objective)
    return model, objective


def adapt(
    cfg: Any,
    mode: str = "new",
    which: str = "last",
    progress: bool = True,
    on_stale: str = "refuse",
) -> tuple[RunDir, FitSummary]:
    """Run the adaptation ``cfg`` describes (see :func:`adaptation_config`). Resuming a run whose
    base checkpoint has changed since (``base_sha256`` in its meta.json), or whose config changes
    what its checkpoints fix, is refused, or with ``on_stale="restart"`` the adaptation starts
    afresh."""
    cfg = as_object(cfg)
    check_mda_domains(cfg)
    set_seed(cfg.seed)
    base = Path(cfg.base_run)
    tokenizer = load_tokenizer(base)
    stats = load_stats(base)
    ckpt = checkpoint_of(base, which)
    digest = file_sha256(ckpt)
    mode = _resume_mode(cfg, mode, ckpt, digest, on_stale)
    run = open_run(cfg, mode, extra={"base_checkpoint": str(ckpt), "base_sha256": digest})
    for f in (TOKENIZER_FILE, STATS_FILE):
        if (base / f).is_file():
            shutil.copyfile(base / f, run.path / f)
    model, objective = adaptation_model(cfg, ckpt, tokenizer.vocab_size)
    run.logger().info(
        "adapting %s (%s) with %s:\n%s", base, ckpt.name, cfg.adapt.method, parameter_summary(model)
    )
    loader = build_dataloader(
        training_data_config(cfg, run.logger()),
        list(cfg.data.train),
        tokenizer,
        train=True,
        seed=cfg.seed,
        feature_stats=stats,
    )
    # a base trained with per-utterance statistics has none; adapting with global or per-speaker
    # normalisation then uses (and saves) those of the adaptation data
    if stats is None and loader.feature_stats is not None:
        stats = loader.feature_stats
        save_stats(run.path, stats)
    summary = fit(cfg, run, model, objective, tokenizer, loader, stats, progress)
    save_adaptation(run.path / ADAPTATION_FILE, model, extra={"base_checkpoint": str(ckpt)})
    return run, summary
