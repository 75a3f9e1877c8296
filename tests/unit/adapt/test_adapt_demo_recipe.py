"""The demo's adaptation recipe (semiasr.tasks.demo): applied through the adaptation config as
``run_demo`` applies it, it trains the adapters and the upper blocks' norms and depthwise kernels
of the demo's model — 4.36% of the encoder, inside the goal's 5% — and a demo folder adapted with
another recipe is adapted afresh rather than refused."""

from __future__ import annotations

from pathlib import Path

from semiasr.adapt import prepare_adaptation, summary_rows
from semiasr.config import as_object, load_config, to_yaml
from semiasr.models.build import build_model
from semiasr.tasks.adapt import adaptation_config
from semiasr.tasks.demo import _adaptation_mode, demo_adaptation_overrides


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
    assert (cfg.adapt.bottleneck, cfg.adapt.adapter_act) == (64, "silu")
    assert (cfg.optim.lr, cfg.sched.name, cfg.sched.warmup_steps) == (0.006, "cosine", 15)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "encoder.layers.1.conv.depthwise.weight" in trained
    assert "encoder.layers.3.ff2.norm.weight" in trained
    assert "adapters.encoder-layers-0.up.weight" in trained
    assert not any(n.startswith("encoder.layers.0.") for n in trained)  # the first block frozen
    assert not any(n.startswith("encoder.subsampling") for n in trained)
    assert not any(".linear_q." in n or ".linear1." in n for n in trained)  # no projection trains
    parts = {r.part: r for r in summary_rows(model)}
    encoder_side = sum(r.trainable for p, r in parts.items() if p == "encoder" or "[encoder]" in p)
    assert round(100.0 * encoder_side / parts["encoder"].total, 2) == 4.36  # docs/adaptation.md


def test_demo_recipe_on_a_one_block_model_trains_the_adapters_alone(tmp_path):
    cfg, model = _adapted(tmp_path, ["model.num_layers=1", "model.d_model=32", "model.num_heads=2"])
    assert list(cfg.adapt.also_train) == []
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("adapters.") for n in trained)
    assert not any(n.startswith("encoder.") for n in trained)


def test_a_demo_folder_adapted_with_another_recipe_is_adapted_afresh(tmp_path):
    cfg, _ = _adapted(tmp_path)
    run = tmp_path / "base-adapters"
    assert _adaptation_mode(cfg, "resume") == "resume"  # nothing there yet
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1}\n')
    (run / "config.yaml").write_text(to_yaml(cfg))
    assert _adaptation_mode(cfg, "resume") == "resume"  # the same recipe: resume it
    older = as_object(load_config(run / "config.yaml", ["adapt.bottleneck=32", "optim.lr=0.001"]))
    (run / "config.yaml").write_text(to_yaml(older))
    assert _adaptation_mode(cfg, "resume") == "overwrite"  # another recipe: afresh, not refused
    assert _adaptation_mode(cfg, "new") == "new"
