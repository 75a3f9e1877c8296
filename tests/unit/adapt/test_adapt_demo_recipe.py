"""The demo's adaptation recipe (semiasr.tasks.demo): applied through the adaptation config as
``run_demo`` applies it, it trains the adapters and the upper blocks' norms and depthwise kernels
of the demo's model — 4.82% of the encoder with the adapters' convolutions, inside the goal's 5% —
and a demo folder adapted with
another recipe is stale: adapted afresh rather than refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semiasr.adapt import prepare_adaptation, summary_rows
from semiasr.config import as_object, load_config, to_yaml
from semiasr.errors import RunDirError
from semiasr.models.build import build_model
from semiasr.tasks.adapt import _resume_mode, adaptation_config
from semiasr.tasks.demo import demo_adaptation_overrides


def _adapted(tmp_path: Path, overrides: list[str] = ()):
    """(adaptation config, prepared model) of the demo's recipe over a base run of the demo
    config (with ``overrides``), as run_demo builds them."""
    base = tmp_path / "base"
    base.mkdir()
    cfg = load_config("demo", list(overrides))
    (base / "config.yaml").write_text(to_yaml(cfg))
    adapt_cfg = adaptation_config(
        base, "adapters", "base-adapters", [f"run_root={tmp_path}", "train.max_steps=150",
                                            *demo_adaptation_overrides(cfg, 150)],
    )  # fmt: skip
    model = build_model(adapt_cfg.model, 28, 80)
    prepare_adaptation(model, adapt_cfg.adapt)
    return adapt_cfg, model


def test_demo_recipe_trains_adapters_and_upper_blocks_norms_and_depthwise_within_budget(tmp_path):
    cfg, model = _adapted(tmp_path)
    assert (cfg.adapt.bottleneck, cfg.adapt.adapter_act, cfg.adapt.adapter_conv_kernel) == (
        64,
        "silu",
        31,
    )
    assert (cfg.optim.lr, cfg.sched.name, cfg.sched.warmup_steps) == (0.006, "cosine", 15)
    aug = cfg.data.augment  # no waveform augmentation while adapting; SpecAugment stays
    assert list(aug.noise_snr_db) == [] and aug.reverb_prob == 0 and aug.telephone_prob == 0
    assert aug.spec_augment and not aug.speed_perturb
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "encoder.layers.1.conv.depthwise.weight" in trained
    assert "encoder.layers.3.ff2.norm.weight" in trained
    assert "adapters.encoder-layers-0.up.weight" in trained
    assert "adapters.encoder-layers-0.conv.weight" in trained
    assert not any(n.startswith("encoder.layers.0.") for n in trained)  # the first block frozen
    assert not any(n.startswith("encoder.subsampling") for n in trained)
    assert not any(".linear_q." in n or ".linear1." in n for n in trained)  # no projection trains
    parts = {r.part: r for r in summary_rows(model)}
    encoder_side = sum(r.trainable for p, r in parts.items() if p == "encoder" or "[encoder]" in p)
    assert round(100.0 * encoder_side / parts["encoder"].total, 2) == 4.82  # docs/adaptation.md


def test_demo_recipe_on_a_one_block_model_trains_the_adapters_alone(tmp_path):
    cfg, model = _adapted(tmp_path, ["model.num_layers=1", "model.d_model=32", "model.num_heads=2"])
    assert list(cfg.adapt.also_train) == []
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("adapters.") for n in trained)
    assert not any(n.startswith("encoder.") for n in trained)


def test_a_run_adapted_with_another_recipe_is_stale(tmp_path):
    """adapt's resume check (``on_stale``): the demo's adaptation folder from an older recipe is
    adapted afresh with "restart" (what run_demo passes); with "refuse" the mode is left for
    open_run to refuse the other config; the same recipe resumes."""
    cfg, _ = _adapted(tmp_path)
    run = tmp_path / "base-adapters"
    ckpt, digest = tmp_path / "base.pt", "d" * 64
    assert _resume_mode(cfg, "resume", ckpt, digest, "restart") == "resume"  # nothing there yet
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    (run / "meta.json").write_text(json.dumps({"base_sha256": digest}))
    (run / "config.yaml").write_text(to_yaml(cfg))
    assert _resume_mode(cfg, "resume", ckpt, digest, "restart") == "resume"  # the same recipe
    # another augmentation while adapting is another recipe for the demo (a plain resume may
    # change it)
    noisy = as_object(load_config(run / "config.yaml", ["data.augment.reverb_prob=0.2"]))
    (run / "config.yaml").write_text(to_yaml(noisy))
    assert _resume_mode(cfg, "resume", ckpt, digest, "restart") == "overwrite"
    assert _resume_mode(cfg, "resume", ckpt, digest, "refuse") == "resume"
    older = as_object(load_config(run / "config.yaml", ["adapt.bottleneck=32", "optim.lr=0.001"]))
    (run / "config.yaml").write_text(to_yaml(older))
    assert _resume_mode(cfg, "resume", ckpt, digest, "restart") == "overwrite"
    assert _resume_mode(cfg, "resume", ckpt, digest, "refuse") == "resume"
    assert _resume_mode(cfg, "new", ckpt, digest, "restart") == "new"
    with pytest.raises(RunDirError, match="adapted another version"):
        _resume_mode(cfg, "resume", ckpt, "e" * 64, "refuse")  # another base checkpoint
    assert _resume_mode(cfg, "resume", ckpt, "e" * 64, "restart") == "overwrite"


def test_demo_report_names_the_source_models_training_conditions():
    """The demo trains its source model under multi-condition augmentation (noise, reverberation, a
    telephone channel: docs/adaptation.md, session 23) and its report says so; switched off, it
    says nothing."""
    from semiasr.tasks.demo import _conditions

    cfg = as_object(load_config("demo", []))
    assert (cfg.data.augment.noise_prob, cfg.data.augment.reverb_prob) == (0.3, 0.2)
    assert _conditions(cfg) == (
        " under multi-condition augmentation (noise 0-30 dB SNR 30%, reverberation 20%, "
        "telephone channel 20%)"
    )
    off = ["data.augment.noise_snr_db=[]", "data.augment.reverb_prob=0",
           "data.augment.telephone_prob=0"]  # fmt: skip
    assert _conditions(as_object(load_config("demo", off))) == ""
    one = as_object(load_config("demo", ["data.augment.noise_snr_db=[10]"]))
    assert _conditions(one).startswith(" under multi-condition augmentation (noise 10 dB SNR 30%")
