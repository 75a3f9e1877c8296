"""The unlabelled stream of joint training (semiasr.tasks.train.joint_objective): its batches
hold ``ssl.joint_batch_duration`` seconds of audio, or as many as a labelled batch by default."""

from __future__ import annotations

import pytest

from semiasr.config import as_object, load_config
from semiasr.errors import ConfigError
from semiasr.models.bestrq import check_bestrq_config
from semiasr.models.build import build_model
from semiasr.tasks.train import joint_objective


def _batch_seconds(loader) -> list[float]:
    return [float(b.feature_lengths.sum()) * 0.01 for b in loader]


@pytest.mark.parametrize("joint_seconds", [0.0, 2.0])
def test_unlabelled_batches_follow_joint_batch_duration(make_corpus, joint_seconds) -> None:
    root = make_corpus({"source_train": 4, "target_unlabelled": 24})
    cfg = as_object(
        load_config(
            None,
            [
                f"data.root={root}",
                "data.corpus=manifest",
                "data.batching.max_duration=8.0",
                "data.batching.num_buckets=1",
                "data.augment.speed_perturb=false",
                "ssl.joint_weight=0.5",
                "ssl.splits=[target_unlabelled]",
                f"ssl.joint_batch_duration={joint_seconds}",
                "model.preset=xs",
            ],
        )
    )
    model = build_model(cfg.model, 8, cfg.data.features.num_mel_bins)
    obj = joint_objective(cfg, model, lambda m, b: (None, {}), None, 0, 1)
    limit = joint_seconds or 8.0
    seconds = _batch_seconds(obj.unlabelled)
    assert max(seconds) <= limit + 0.05  # frames of 10 ms against the cuts' durations
    assert max(seconds) > limit / 2  # batches are filled, not single utterances
    assert cfg.data.batching.max_duration == 8.0  # the labelled batches keep theirs


def test_joint_batch_duration_must_not_be_negative() -> None:
    cfg = load_config(None, ["ssl.joint_batch_duration=-1"])
    with pytest.raises(ConfigError, match=r"ssl\.joint_batch_duration"):
        check_bestrq_config(cfg.ssl)
