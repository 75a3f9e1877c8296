from __future__ import annotations

import torch
from torch import nn

from semiasr.adapt.bench import measure, random_batch, saved_activation_bytes
from semiasr.models.config import ModelConfig


def test_saved_activation_bytes_counts_what_backward_needs() -> None:
    lin = nn.Linear(4, 3)
    x = torch.randn(5, 4)
    # the weight gradient needs x (5·4 float32 = 80 bytes); the weight itself is not counted
    assert saved_activation_bytes(lin, lambda: lin(x).sum()) == 80
    lin.requires_grad_(False)
    assert saved_activation_bytes(lin, lambda: lin(x).sum()) == 0


def test_measure_reports_every_method_against_full() -> None:
    batch = random_batch(2, 40, 3, vocab=64)
    cfg = ModelConfig(d_model=32, num_layers=2, num_heads=2, predictor_dim=16, joiner_dim=16)
    rows = measure(["full", "hff"], cfg, batch, rounds=1, opts={})
    full, hff = rows
    assert full["step_vs_full"] == 1.0 and full["trainable_encoder_pct"] == 100.0
    assert hff["trainable"] < full["trainable"] / 10
    assert hff["saved_MiB"] < full["saved_MiB"]
