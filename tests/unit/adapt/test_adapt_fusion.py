from __future__ import annotations

import pytest
import torch
from torch import nn

from semiasr.adapt import (
    HierarchicalFusion,
    WeightedSumFusion,
    add_adapters,
    add_feature_fusion,
    freeze_all_but,
)
from semiasr.errors import ConfigError, SemiasrError


def layer_outputs(L: int = 5, B: int = 2, T: int = 3, D: int = 4) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return [torch.randn(B, T, D, generator=g, dtype=torch.float64) for _ in range(L)]


def test_weighted_sum_fusion_formula(randomize) -> None:
    fusion = WeightedSumFusion(5, 4, d_out=6).double()
    randomize(fusion)
    hidden = layer_outputs()
    alpha = torch.exp(fusion.weights) / torch.exp(fusion.weights).sum()
    mixed = sum(a * h for a, h in zip(alpha, hidden))
    expected = mixed @ fusion.proj.weight.T + fusion.proj.bias
    torch.testing.assert_close(fusion(hidden), expected, rtol=0, atol=1e-12)


def test_fresh_weighted_sum_is_the_layer_average() -> None:
    hidden = layer_outputs()
    fusion = WeightedSumFusion(5, 4).double()
    torch.testing.assert_close(fusion(hidden), sum(hidden) / 5, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("L", "k", "groups"), [(5, 2, [(0, 2), (2, 4), (4, 5)]), (4, 4, [(0, 4)])])
def test_hierarchical_fusion_formula(randomize, L, k, groups) -> None:
    fusion = HierarchicalFusion(L, 4, group_size=k, d_out=3).double()
    assert fusion.groups == groups
    randomize(fusion)
    hidden = layer_outputs(L)
    h = torch.zeros_like(hidden[0])
    for g, (start, stop) in enumerate(groups):  # h_g = LN(h_{g-1} + W_g S_g + b_g)
        w = torch.exp(fusion.weights[g]) / torch.exp(fusion.weights[g]).sum()
        s = sum(w[i] * hidden[start + i] for i in range(stop - start))
        pre = h + s @ fusion.projs[g].weight.T + fusion.projs[g].bias
        mean = pre.mean(-1, keepdim=True)
        var = pre.var(-1, unbiased=False, keepdim=True)
        h = (pre - mean) / torch.sqrt(var + 1e-5) * fusion.norms[g].weight + fusion.norms[g].bias
    expected = h @ fusion.proj.weight.T + fusion.proj.bias
    torch.testing.assert_close(fusion(hidden), expected, rtol=0, atol=1e-10)


def test_fusion_checks_the_number_of_layers() -> None:
    with pytest.raises(SemiasrError, match="expects 5 layer outputs, got 4"):
        HierarchicalFusion(5, 4, 2).double()(layer_outputs(4))
    with pytest.raises(ConfigError, match="group size"):
        HierarchicalFusion(5, 4, 0)


def _step(model: nn.Module, feats) -> None:
    x, n = feats()
    model(x, n, torch.tensor([1, 2, 3])).pow(2).sum().backward()


@pytest.mark.parametrize("kind", ["weighted", "hierarchical"])
def test_hff_sends_no_gradient_into_the_frozen_encoder(toy, feats, kind) -> None:
    model = toy()
    fusion = add_feature_fusion(model, "encoder", "layers.*", kind, group_size=2)
    freeze_all_but(model, ["fusion", "predictor", "joiner"])
    seen: list[bool] = []
    model.encoder.layers[2].register_forward_hook(lambda m, a, o: seen.append(o.requires_grad))
    _step(model, feats)
    assert seen == [False]  # the encoder ran without autograd
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in fusion.parameters())
    assert model.joiner.weight.grad is not None


def test_hff_output_is_the_fusion_of_the_layer_outputs(toy, feats, randomize) -> None:
    model = toy()
    fusion = add_feature_fusion(model, "encoder", "layers.*", "hierarchical", group_size=3)
    randomize(fusion)
    x, n = feats()
    hidden, h = [], model.encoder.proj_in(x)
    for layer in model.encoder.layers:
        h = layer(h)
        hidden.append(h)
    frames, lengths = model.encoder(x, n)
    torch.testing.assert_close(frames, fusion(hidden), rtol=0, atol=0)
    assert torch.equal(lengths, n)


def test_hff_with_adapters_trains_the_adapters_through_the_frozen_encoder(toy, feats) -> None:
    model = toy()
    add_feature_fusion(model, "encoder", "layers.*", "weighted")
    add_adapters(model, "encoder.layers.*", ["output"], bottleneck=3)
    freeze_all_but(model, ["fusion", "adapters", "joiner"])
    _step(model, feats)
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.adapters["encoder-layers-0"].up.weight.grad.abs().sum() > 0


def test_hff_refuses_a_mismatched_output_width(toy, feats) -> None:
    model = toy()
    add_feature_fusion(model, "encoder", "layers.*", "weighted", d_out=7)
    with pytest.raises(SemiasrError, match="set the fusion's d_out"):
        _step(model, feats)
    with pytest.raises(ConfigError, match="already has its forward replaced"):
        add_feature_fusion(model, "encoder", "layers.*")
