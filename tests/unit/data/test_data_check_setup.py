"""tasks.common.check_setup: what a run would fail on, found before its directory is opened (and
before --overwrite deletes the old run); valid configs pass, the model built on the meta device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semiasr.config import as_object, load_config
from semiasr.errors import CheckpointError, ConfigError, DataError
from semiasr.tasks.common import check_setup

TINY = ["model.d_model=32", "model.num_layers=1", "model.num_heads=2", "train.max_steps=4"]


def _cfg(root: Path, *overrides: str):
    splits = "data.train=[source_train]", "data.valid=[source_train]", f"data.root={root}"
    return as_object(load_config("demo", [*TINY, *splits, "sched.warmup_steps=1", *overrides]))


def test_valid_configs_pass_and_allocate_nothing(make_corpus) -> None:
    root = make_corpus()
    check_setup(_cfg(root), ["source_train"])
    check_setup(_cfg(root, "optim.implementation=fused"), ["source_train"])  # no meta kernel
    check_setup(_cfg(root, "model.kind=ctc", "model.subsampling=8"), ["source_train"])


@pytest.mark.parametrize(
    ("override", "error", "named"),
    [
        ("data.valid=[no_such_split]", DataError, "no_such_split"),
        ("sched.name=cosine", ConfigError, "warmup_steps"),  # with max_steps 4 < warm-up 300
        ("model.init_encoder=/nowhere/enc.pt", CheckpointError, r"/nowhere/enc\.pt"),
        ("ssl.joint_weight=0.5", ConfigError, "ssl.splits"),
    ],
)
def test_what_would_fail_later_fails_first(make_corpus, override, error, named) -> None:
    root = make_corpus()
    extra = ["sched.warmup_steps=300"] if "cosine" in override else []
    with pytest.raises(error, match=named):
        check_setup(_cfg(root, override, *extra), ["source_train"])


def test_an_encoder_that_does_not_fit_is_named(make_corpus, tmp_path: Path) -> None:
    from semiasr.models import build_model

    cfg = _cfg(make_corpus())
    same = build_model(cfg.model, 8, cfg.data.features.num_mel_bins)
    torch.save({"model": same.state_dict()}, tmp_path / "same.pt")
    check_setup(_cfg(cfg.data.root, f"model.init_encoder={tmp_path / 'same.pt'}"), ["source_train"])
    other = build_model(_cfg(make_corpus(), "model.d_model=48").model, 8, 80)
    torch.save({"model": other.state_dict()}, tmp_path / "enc.pt")
    with pytest.raises(CheckpointError, match=r"enc\.pt"):
        check_setup(
            _cfg(cfg.data.root, f"model.init_encoder={tmp_path / 'enc.pt'}"), ["source_train"]
        )
    check_setup(
        _cfg(cfg.data.root, f"model.init_encoder={tmp_path / 'enc.pt'}"),
        ["source_train"],
        fresh=False,
    )
