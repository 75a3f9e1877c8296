from __future__ import annotations

import pytest
import torch
from torch import nn

from semiasr.adapt import apply_lora, merge_lora, unmerge_lora
from semiasr.adapt.lora import lora_layers
from semiasr.errors import ConfigError

TARGETS = ["encoder.layers.*.attn.**", "encoder.layers.*.ff1.**", "encoder.layers.*.ff2.**"]


def test_lora_targets_the_block_projections(toy) -> None:
    model = toy(num_layers=2)
    added = apply_lora(model, TARGETS, rank=2)
    assert len(added) == 2 * (4 + 2 + 2)
    assert all(isinstance(model.get_submodule(n), nn.Linear) for n in added)
    assert "encoder.proj_in" not in added


def test_fresh_lora_is_the_identity(toy, feats) -> None:
    model = toy(dtype=torch.float32)
    x, n = feats(dtype=torch.float32)
    before = model(x, n)
    apply_lora(model, TARGETS, rank=4, alpha=8.0)
    assert torch.equal(model(x, n), before)


def test_lora_linear_computes_its_formula(randomize) -> None:
    torch.manual_seed(0)
    holder = nn.Module()
    holder.lin = nn.Linear(5, 3).double()
    lora = apply_lora(holder, "lin", rank=2, alpha=6.0)["lin"]
    randomize(lora)
    x = torch.randn(4, 5, dtype=torch.float64)
    w, b = holder.lin.weight, holder.lin.bias
    expected = x @ w.T + b + (6.0 / 2) * (x @ lora.A.T @ lora.B.T)
    torch.testing.assert_close(holder.lin(x), expected, rtol=0, atol=1e-12)


def test_merged_equals_unmerged_and_unmerge_restores_exactly(toy, feats, randomize) -> None:
    model = toy(dtype=torch.float32)
    x, n = feats(dtype=torch.float32)
    base_weights = {k: v.clone() for k, v in model.state_dict().items()}
    base_out = model(x, n)
    added = apply_lora(model, TARGETS, rank=4, alpha=8.0)
    for i, lora in enumerate(added.values()):
        randomize(lora, seed=i, scale=0.1)
    unmerged = model(x, n)
    assert not torch.allclose(unmerged, base_out, atol=1e-3)
    assert merge_lora(model) == len(added)
    assert merge_lora(model) == 0  # already merged
    merged = model(x, n)
    torch.testing.assert_close(merged, unmerged, rtol=0, atol=1e-6)
    q = model.encoder.layers[0].attn.q
    assert not torch.equal(q.weight, base_weights["encoder.layers.0.attn.q.weight"])
    assert unmerge_lora(model) == len(added)
    for k, v in base_weights.items():
        assert torch.equal(model.state_dict()[k], v), k
    assert torch.equal(model(x, n), unmerged)


def test_lora_skips_multihead_attention_linears() -> None:
    holder = nn.Module()
    holder.mha = nn.MultiheadAttention(8, 2)
    holder.proj = nn.Linear(8, 8)
    added = apply_lora(holder, "**", rank=2)
    assert list(added) == ["proj"]
    assert lora_layers(holder).keys() == {"proj"}
    with pytest.raises(ConfigError, match=r"no nn\.Linear"):
        apply_lora(holder, "mha.**", rank=2)


def test_lora_rejects_bad_rank_and_double_application(toy) -> None:
    model = toy()
    with pytest.raises(ConfigError, match="rank"):
        apply_lora(model, TARGETS, rank=0)
    apply_lora(model, "encoder.layers.0.attn.q", rank=2)
    with pytest.raises(ConfigError, match="already has LoRA"):
        apply_lora(model, "encoder.layers.0.attn.q", rank=2)
