from __future__ import annotations

import pytest
import torch

from semiasr.adapt import add_adapters, freeze_all_but, parameter_summary, summary_rows
from semiasr.errors import ConfigError


def test_freeze_all_but_trains_exactly_the_matches(toy) -> None:
    model = toy()
    trained = freeze_all_but(model, ["predictor", "encoder.layers.*.attn.q"])
    expected = {"predictor.weight"} | {
        f"encoder.layers.{i}.attn.q.{w}" for i in range(4) for w in ("weight", "bias")
    }
    assert set(trained) == expected
    assert {n for n, p in model.named_parameters() if p.requires_grad} == expected


def test_freeze_all_but_refuses_a_pattern_that_matches_nothing(toy) -> None:
    model = toy()
    with pytest.raises(ConfigError, match="'predicter' matches no parameter"):
        freeze_all_but(model, ["predicter"])
    assert all(p.requires_grad for p in model.parameters())  # nothing was changed


def test_summary_counts(toy) -> None:
    model = toy(num_layers=2, d=8, feat=6, vocab=5)
    add_adapters(model, "encoder.layers.*", ["output"], bottleneck=2)
    freeze_all_but(model, ["adapters", "joiner"])
    rows = {r.part: r for r in summary_rows(model)}
    enc = sum(p.numel() for p in model.encoder.parameters())
    adapter = 2 * 8 + (8 * 2 + 2) + (2 * 8 + 8)  # norm, down, up
    assert rows["encoder"].total == enc and rows["encoder"].trainable == 0
    assert rows["adapters[encoder]"].total == rows["adapters[encoder]"].trainable == 2 * adapter
    assert rows["joiner"].trainable == 8 * 5 + 5
    assert rows["predictor"].frozen == 5 * 8
    table = parameter_summary(model)
    total_line = table.splitlines()[-1].split()
    assert total_line[0] == "total"
    trainable = 2 * adapter + 45
    assert total_line[2] == f"{trainable:,}"
    assert total_line[4] == f"{100 * trainable / enc:.2f}%"


def test_frozen_parameters_get_no_gradient(toy, feats) -> None:
    model = toy()
    freeze_all_but(model, ["joiner"])
    x, n = feats()
    model(x, n).sum().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("joiner"))
    assert isinstance(model.joiner.weight.grad, torch.Tensor)


def test_summary_counts_lora_apart_from_the_base_encoder(toy) -> None:
    from semiasr.adapt import apply_lora

    model = toy(num_layers=2, d=8)
    enc = sum(p.numel() for p in model.encoder.parameters())
    apply_lora(model, "encoder.layers.*.attn.q", rank=2)
    rows = {r.part: r for r in summary_rows(model)}
    assert rows["encoder"].total == enc
    assert rows["lora[encoder]"].total == 2 * (2 * 8 + 8 * 2)
