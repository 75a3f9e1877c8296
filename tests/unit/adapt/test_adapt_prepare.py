from __future__ import annotations

import pytest
import torch

from semiasr.adapt import METHODS, AdaptConfig, domain_context, prepare_adaptation
from semiasr.errors import ConfigError

OPTS = {
    "full": {},
    "decoder": {},
    "adapters": {"bottleneck": 3},
    "lora": {"lora_rank": 2},
    "mda": {"bottleneck": 3, "num_domains": 2},
    "hff": {},
    "hff+adapters": {"bottleneck": 3},
}


def _expected_trainable(name: str, method: str) -> bool:
    head = name.split(".")[0]
    decoder = head in ("predictor", "joiner")
    return {
        "full": True,
        "decoder": decoder,
        "adapters": decoder or head == "adapters",
        "lora": decoder or ".lora." in name,
        "mda": head in ("adapters", "domain_modules"),
        "hff": decoder or head == "fusion",
        "hff+adapters": decoder or head in ("fusion", "adapters"),
    }[method]


@pytest.mark.parametrize("method", METHODS)
def test_after_a_step_only_the_methods_parameters_changed(toy, feats, method) -> None:
    model = prepare_adaptation(toy(), method, **OPTS[method])
    for name, p in model.named_parameters():
        assert p.requires_grad == _expected_trainable(name, method), name
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x, n = feats()
    with domain_context(model, 1) if method == "mda" else torch.enable_grad():
        for _ in range(2):  # zero-initialised branches move the rest from step 2 on
            opt.zero_grad()
            model(x, n, torch.tensor([1, 2, 3])).pow(2).sum().backward()
            opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    params = dict(model.named_parameters())
    assert changed == {k for k, p in params.items() if p.requires_grad}


def test_prepare_accepts_a_config_object_and_records_it(toy) -> None:
    cfg = AdaptConfig(method="lora", lora_rank=3, train_decoder=False)
    model = prepare_adaptation(toy(), cfg)
    assert model._semiasr_adapt.config["lora_rank"] == 3
    assert not model.joiner.weight.requires_grad


def test_prepare_errors(toy) -> None:
    with pytest.raises(ConfigError, match="unknown adaptation method 'prompt'"):
        prepare_adaptation(toy(), "prompt")
    with pytest.raises(ConfigError, match="unknown adaptation option"):
        prepare_adaptation(toy(), "adapters", bottlenek=3)
    with pytest.raises(ConfigError, match="shared decoder cannot train"):
        prepare_adaptation(toy(), "mda", train_decoder=True)
    with pytest.raises(ConfigError, match="no submodule 'enc'"):
        prepare_adaptation(toy(), "adapters", encoder="enc")
    with pytest.raises(ConfigError, match=r"adapter_mode='parallel' applies to .* not 'mda'"):
        prepare_adaptation(toy(), "mda", adapter_mode="parallel")
    with pytest.raises(ConfigError, match=r"adapter_scale=4\.0 scales parallel adapters only"):
        prepare_adaptation(toy(), "adapters", adapter_scale=4.0)
    model = prepare_adaptation(toy(), "adapters")
    with pytest.raises(ConfigError, match="already set up for 'adapters'"):
        prepare_adaptation(model, "lora")


def test_frozen_batchnorm_keeps_its_statistics(toy, feats) -> None:
    model = toy()
    model.encoder.bn = torch.nn.BatchNorm1d(16).double()
    prepare_adaptation(model, "adapters", bottleneck=2)
    model.train()
    model.encoder.bn(torch.randn(4, 16, dtype=torch.float64))
    assert torch.equal(model.encoder.bn.running_mean, torch.zeros(16, dtype=torch.float64))


def test_adapt_config_is_omegaconf_friendly(toy) -> None:
    from omegaconf import OmegaConf

    schema = OmegaConf.structured(AdaptConfig)
    merged = OmegaConf.merge(schema, {"method": "mda", "train_decoder": False, "bottleneck": 3})
    cfg = OmegaConf.to_object(merged)
    assert isinstance(cfg, AdaptConfig) and cfg.train_decoder is False
    model = prepare_adaptation(toy(), cfg)
    assert model._semiasr_adapt.config == OmegaConf.to_container(merged)
