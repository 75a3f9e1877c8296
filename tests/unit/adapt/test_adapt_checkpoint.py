from __future__ import annotations

import pytest
import torch

from semiasr.adapt import (
    load_adaptation,
    merge_lora,
    prepare_adaptation,
    save_adaptation,
    unmerge_lora,
)
from semiasr.adapt.checkpoint import read_adaptation
from semiasr.adapt.lora import lora_layers
from semiasr.adapt.names import adapt_state
from semiasr.errors import CheckpointError

METHOD_OPTS = {
    "adapters": {"bottleneck": 3},
    "lora": {"lora_rank": 2, "lora_targets": ["attn.**"]},
    "mda": {"num_domains": 3, "bottleneck": 3},
    "hff": {"fusion": "hierarchical"},
    "hff+adapters": {  # parallel adapters: the mode and scale must survive the round trip
        "bottleneck": 3,
        "fusion": "weighted",
        "adapter_mode": "parallel",
        "adapter_positions": ["ff1"],
        "adapter_scale": 2.0,
    },
    "decoder": {},
    "full": {},
}


def _train(model, feats, steps: int = 3) -> None:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    x, n = feats()
    for _ in range(steps):
        opt.zero_grad()
        _run(model, x, n).pow(2).sum().backward()
        opt.step()


def _run(model, x, n):
    domains = torch.tensor([1, 2, 0])[: x.shape[0]]
    state = model.__dict__.get("_semiasr_adapt")
    if state is not None and state.router is not None:
        from semiasr.adapt import domain_context

        with domain_context(model, domains):
            return model(x, n, torch.tensor([1, 2, 3]))
    return model(x, n, torch.tensor([1, 2, 3]))


@pytest.mark.parametrize("method", list(METHOD_OPTS))
def test_adaptation_checkpoint_round_trips(toy, feats, tmp_path, method) -> None:
    model = prepare_adaptation(toy(), method, **METHOD_OPTS[method])
    _train(model, feats)
    path = tmp_path / "adapt.pt"
    save_adaptation(path, model, extra={"step": 3})
    payload = read_adaptation(path)
    assert payload["extra"] == {"step": 3} and payload["config"]["method"] == method
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained <= set(payload["tensors"])
    if method not in ("full",):
        frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
        assert not frozen & set(payload["tensors"]), "frozen weights are not stored"
    fresh = load_adaptation(path, toy())  # the same base model, built again
    x, n = feats()
    model.eval(), fresh.eval()
    assert torch.equal(_run(fresh, x, n), _run(model, x, n))
    again = prepare_adaptation(toy(), method, **METHOD_OPTS[method])
    assert torch.equal(_run(load_adaptation(path, again), x, n), _run(model, x, n))


def test_checkpoint_refuses_a_base_with_other_weights(toy, feats, tmp_path) -> None:
    model = prepare_adaptation(toy(), "adapters", bottleneck=3)
    _train(model, feats)
    save_adaptation(tmp_path / "a.pt", model)
    other = toy(seed=1)
    with pytest.raises(CheckpointError, match=r"weights differ .*encoder\.proj_in\.weight"):
        load_adaptation(tmp_path / "a.pt", other)
    # refused before anything is added: the model stays a plain base model, free to set up
    assert all(p.requires_grad for p in other.parameters())
    assert adapt_state(other).config is None and not hasattr(other, "adapters")
    prepare_adaptation(other, "lora", lora_rank=2)
    tweaked = toy()
    with torch.no_grad():
        tweaked.encoder.layers[3].attn.v.bias[0] += 1e-6
    with pytest.raises(CheckpointError, match=r"1 tensors: encoder\.layers\.3\.attn\.v\.bias"):
        load_adaptation(tmp_path / "a.pt", tweaked)


def test_checkpoint_refuses_a_base_of_another_shape(toy, feats, tmp_path) -> None:
    model = prepare_adaptation(toy(), "lora", lora_rank=2)
    save_adaptation(tmp_path / "a.pt", model)
    with pytest.raises(CheckpointError, match=r"missing encoder\.layers\.3"):
        load_adaptation(tmp_path / "a.pt", toy(num_layers=3))
    shape = r"different shape/dtype: encoder\.proj_in\.weight \[24, 6\]"
    with pytest.raises(CheckpointError, match=shape):
        load_adaptation(tmp_path / "a.pt", toy(d=24))
    with pytest.raises(CheckpointError, match="float32"):
        load_adaptation(tmp_path / "a.pt", toy(dtype=torch.float32))


def test_checkpoint_refuses_a_model_set_up_differently(toy, tmp_path) -> None:
    save_adaptation(tmp_path / "a.pt", prepare_adaptation(toy(), "adapters", bottleneck=3))
    other = prepare_adaptation(toy(), "adapters", bottleneck=4)
    with pytest.raises(CheckpointError, match=r"bottleneck=4 \(checkpoint: 3\)"):
        load_adaptation(tmp_path / "a.pt", other)


def test_checkpoint_of_merged_lora_fingerprints_the_unmerged_base(toy, feats, tmp_path) -> None:
    model = prepare_adaptation(toy(), "lora", lora_rank=2)
    _train(model, feats)
    x, n = feats()
    expected = _run(model, x, n)
    merge_lora(model)
    save_adaptation(tmp_path / "a.pt", model)
    loaded = load_adaptation(tmp_path / "a.pt", toy())
    torch.testing.assert_close(_run(loaded, x, n), expected, rtol=0, atol=1e-10)


def test_loading_onto_merged_lora_replaces_the_merged_branches(toy, feats, tmp_path) -> None:
    """A model serving adaptation A merged takes adaptation B: B's function, merged again."""
    x, n = feats()
    outputs = {}
    for seed in (1, 2):
        model = prepare_adaptation(toy(), "lora", lora_rank=2)
        torch.manual_seed(seed)
        _train(model, feats, steps=seed)
        save_adaptation(tmp_path / f"{seed}.pt", model)
        outputs[seed] = _run(model.eval(), x, n)
    serving = load_adaptation(tmp_path / "1.pt", toy()).eval()
    assert merge_lora(serving) > 0
    load_adaptation(tmp_path / "2.pt", serving)
    assert all(linear.lora.merged for linear in lora_layers(serving).values())
    torch.testing.assert_close(_run(serving, x, n), outputs[2], rtol=0, atol=1e-10)
    unmerge_lora(serving)
    torch.testing.assert_close(_run(serving, x, n), outputs[2], rtol=0, atol=1e-10)


def test_checkpoint_errors(toy, tmp_path) -> None:
    with pytest.raises(CheckpointError, match="not set up by prepare_adaptation"):
        save_adaptation(tmp_path / "a.pt", toy())
    with pytest.raises(CheckpointError, match="no such adaptation checkpoint"):
        load_adaptation(tmp_path / "missing.pt", toy())
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_adaptation(tmp_path / "junk.pt", toy())
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a semiasr adaptation checkpoint"):
        load_adaptation(tmp_path / "other.pt", toy())


def test_checkpoint_older_than_an_option_loads_with_its_default(toy, feats, tmp_path) -> None:
    """A checkpoint written before ``adapter_mode`` existed loads into a model set up with the
    default (serial) and is refused by one set up in parallel."""
    model = prepare_adaptation(toy(), "adapters", bottleneck=3)
    _train(model, feats)
    path = tmp_path / "old.pt"
    save_adaptation(path, model)
    payload = torch.load(path, weights_only=True)
    for key in ("adapter_mode", "adapter_scale"):
        del payload["config"][key]
    torch.save(payload, path)
    x, n = feats()
    same = load_adaptation(path, prepare_adaptation(toy(), "adapters", bottleneck=3))
    model.eval(), same.eval()
    assert torch.equal(_run(same, x, n), _run(model, x, n))
    parallel = prepare_adaptation(toy(), "adapters", bottleneck=3, adapter_mode="parallel")
    with pytest.raises(CheckpointError, match="adapter_mode='parallel'"):
        load_adaptation(path, parallel)
