"""The demo's adaptation recipe (semiasr.tasks.demo): the overrides it adds to the adaptation
config name real parameters of the demo's model and stay inside the goal's 5% of the encoder."""

from __future__ import annotations

import json

from semiasr.adapt import prepare_adaptation, summary_rows
from semiasr.config import as_object, load_config
from semiasr.models.build import build_model
from semiasr.tasks.demo import DEMO_ADAPTERS, demo_adaptation_overrides


def _also_train(overrides: list[str]) -> list[str]:
    (value,) = [o.split("=", 1)[1] for o in overrides if o.startswith("adapt.also_train=")]
    return json.loads(value)


def test_demo_recipe_trains_adapters_and_upper_blocks_norms_and_depthwise_within_budget():
    cfg = load_config("demo")
    overrides = demo_adaptation_overrides(cfg, 150)
    assert overrides[: len(DEMO_ADAPTERS)] == DEMO_ADAPTERS
    assert "sched.warmup_steps=15" in overrides
    also = _also_train(overrides)
    model = build_model(as_object(cfg).model, 28, 80)
    prepare_adaptation(model, "adapters", bottleneck=64, adapter_act="silu", also_train=also)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "encoder.layers.1.conv.depthwise.weight" in trained
    assert "encoder.layers.3.ff2.norm.weight" in trained
    assert not any(n.startswith("encoder.layers.0.") for n in trained)  # the first block frozen
    assert not any(n.startswith("encoder.subsampling") for n in trained)
    assert not any(".linear_q." in n or ".linear1." in n for n in trained)  # no projection trains
    parts = {r.part: r for r in summary_rows(model)}
    encoder_side = sum(r.trainable for p, r in parts.items() if p == "encoder" or "[encoder]" in p)
    share = 100.0 * encoder_side / parts["encoder"].total
    assert round(share, 2) == 4.36  # docs/adaptation.md: this recipe on the demo's model


def test_demo_recipe_on_a_one_block_model_trains_the_adapters_alone():
    cfg = load_config("demo", ["model.num_layers=1", "model.d_model=32", "model.num_heads=2"])
    assert _also_train(demo_adaptation_overrides(cfg, 30)) == []
    assert "sched.warmup_steps=3" in demo_adaptation_overrides(cfg, 30)
