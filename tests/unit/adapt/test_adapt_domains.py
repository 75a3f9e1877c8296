from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch

from semiasr.adapt import (
    DomainRoutedObjective,
    add_domain_adapters,
    add_domain_modules,
    domain_context,
    freeze_all_but,
)
from semiasr.adapt.domains import route_rows
from semiasr.errors import ConfigError, DataError, SemiasrError


def mda_model(toy, randomize, num_domains: int = 3):
    """The toy model with per-domain ff1/ff2 copies and per-domain adapters, every target module
    given random weights (so that domains really differ)."""
    model = toy()
    base = copy.deepcopy(model)
    copies = add_domain_modules(
        model, ["encoder.layers.*.ff1", "encoder.layers.*.ff2"], num_domains
    )
    adapters = add_domain_adapters(model, "encoder.layers.*", ["output"], 3, num_domains)
    for i, m in enumerate([*copies.values(), *adapters.values()]):
        randomize(m, seed=100 + i, scale=0.2)
    return model, base


def test_fresh_mda_model_equals_the_base_for_every_domain(toy, feats) -> None:
    model = toy(dtype=torch.float32)
    x, n = feats(dtype=torch.float32)
    before = model(x, n)
    add_domain_modules(model, "encoder.layers.*.ff1", 3)
    add_domain_adapters(model, "encoder.layers.*", ["output"], 3, 3)
    for domains in (0, 1, 2, torch.tensor([2, 0, 1])):
        with domain_context(model, domains):
            torch.testing.assert_close(model(x, n), before, rtol=0, atol=1e-6)
    with domain_context(model, 0):
        assert torch.equal(model(x, n), before)


def test_source_rows_are_bit_identical_to_the_base_model(toy, feats, randomize) -> None:
    model, base = mda_model(toy, randomize)
    x, n = feats(B=4)
    with domain_context(model, torch.tensor([0, 1, 0, 2])):
        mixed = model(x, n)
    expected = base(x, n)
    assert torch.equal(mixed[[0, 2]], expected[[0, 2]])
    assert not torch.allclose(mixed[[1, 3]], expected[[1, 3]])


def test_mixed_batches_route_each_row_to_its_domain(toy, feats, randomize) -> None:
    model, _ = mda_model(toy, randomize)
    x, n = feats(B=5)
    domains = torch.tensor([2, 0, 1, 1, 2])
    with domain_context(model, domains):
        mixed = model(x, n)
    for b, d in enumerate(domains.tolist()):  # brute force: each row alone, its domain for all
        with domain_context(model, d):
            alone = model(x[b : b + 1], n[b : b + 1])
        torch.testing.assert_close(mixed[b : b + 1], alone, rtol=0, atol=1e-10)


@pytest.mark.parametrize("domain", [0, 1, 2])
def test_a_domain_batch_gives_no_gradient_to_other_domains(toy, feats, randomize, domain) -> None:
    model, _ = mda_model(toy, randomize)
    x, n = feats()
    with domain_context(model, torch.full((3,), domain)):
        model(x, n).pow(2).sum().backward()
    for name, p in model.named_parameters():
        owner = _domain_of(name)
        if owner is None:
            continue  # shared parameters
        if owner == domain:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None or torch.count_nonzero(p.grad) == 0, name


def _domain_of(name: str) -> int | None:
    """0 for the base ff1/ff2, d for the copies/adapters of domain d, None for shared parameters."""
    parts = name.split(".")
    if parts[0] == "domain_modules":
        return int(parts[2])
    if parts[0] == "adapters":
        return int(parts[3])
    if len(parts) > 3 and parts[3] in ("ff1", "ff2"):
        return 0
    return None


def test_mixed_batch_gradient_of_each_domain_comes_from_its_rows_only(
    toy, feats, randomize
) -> None:
    model, _ = mda_model(toy, randomize)
    x, n = feats(B=4)
    domains = torch.tensor([1, 2, 1, 0])
    with domain_context(model, domains):
        model(x, n)[domains == 1].pow(2).sum().backward()  # loss on domain-1 rows only
    for name, p in model.named_parameters():
        if _domain_of(name) in (0, 2):
            assert p.grad is None or torch.count_nonzero(p.grad) == 0, name


def test_training_target_modules_leaves_the_source_unchanged(toy, feats, randomize) -> None:
    model, base = mda_model(toy, randomize)
    freeze_all_but(model, ["adapters", "domain_modules"])
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x, n = feats()
    with domain_context(model, torch.tensor([1, 2, 1])):
        model(x, n).pow(2).sum().backward()
    opt.step()
    with domain_context(model, 0):
        assert torch.equal(model(x, n), base(x, n))


def test_domain_ids_come_from_a_batch_argument(toy, feats, randomize) -> None:
    model, _ = mda_model(toy, randomize)
    x, n = feats()
    batch = SimpleNamespace(domains=torch.tensor([1, 0, 2]))
    with domain_context(model, torch.tensor([1, 0, 2])):
        expected = model(x, n)
    torch.testing.assert_close(model(x, n, context=None, batch=batch), expected, rtol=0, atol=0)


def test_a_refused_batch_leaves_the_enclosing_context_routing(toy, feats, randomize) -> None:
    model, _ = mda_model(toy, randomize)
    x, n = feats()
    bad = SimpleNamespace(domains=torch.tensor([5, 0, 1]))
    with domain_context(model, 1):
        expected = model(x, n)
        with pytest.raises(DataError, match="domain id 5 out of range"):
            model(x, n, context=None, batch=bad)
        torch.testing.assert_close(model(x, n), expected, rtol=0, atol=0)
    with pytest.raises(SemiasrError, match="no domain ids"):  # and the context closed cleanly
        model(x, n)


def test_mda_gives_adapter_extra_modules_per_domain_adapters(toy, feats, randomize) -> None:
    from semiasr.adapt import prepare_adaptation

    model = prepare_adaptation(toy(), "mda", num_domains=3, bottleneck=3, adapter_extra=["proj_in"])
    extra = [k for k in model.adapters if k.startswith("encoder-proj_in")]
    assert extra, list(model.adapters)
    base = toy()
    x, n = feats()
    randomize(model.adapters[extra[0]], seed=7, scale=0.2)
    with domain_context(model, torch.tensor([0, 1, 2])):
        out = model(x, n)
    assert torch.equal(out[0], base(x, n)[0])  # the source domain's rows stay the base model's
    with domain_context(model, 1):
        model(x, n).sum().backward()
    grads = {k: p.grad for k, p in model.adapters[extra[0]].named_parameters()}
    assert any(g is not None and g.abs().sum() > 0 for k, g in grads.items() if ".1." in f".{k}.")
    assert all(g is None or g.abs().sum() == 0 for k, g in grads.items() if ".2." in f".{k}.")


def test_routing_errors(toy, feats, randomize) -> None:
    model, _ = mda_model(toy, randomize)
    x, n = feats()
    with pytest.raises(SemiasrError, match="no domain ids"):
        model(x, n)
    with (
        pytest.raises(DataError, match="out of range"),
        domain_context(model, torch.tensor([0, 3, 1])),
    ):
        pass
    with pytest.raises(DataError, match="2 domain ids for a batch of 3"):
        with domain_context(model, torch.tensor([0, 1])):
            model(x, n)
    with pytest.raises(ConfigError, match="no per-domain"), domain_context(toy(), 0):
        pass
    with pytest.raises(ConfigError, match="already routed"):
        add_domain_modules(model, "encoder.layers.0.ff1", 3)
    with pytest.raises(ConfigError, match="3 domains, not 2"):
        add_domain_modules(model, "encoder.layers.0.attn", 2)


def test_route_rows_by_brute_force() -> None:
    x = torch.arange(12.0).reshape(4, 3)
    paths = {0: lambda h: h * 10, 2: lambda h: -h}
    out = route_rows(torch.tensor([2, 1, 0, 2]), paths, x)
    assert torch.equal(out, torch.stack([-x[0], x[1], 10 * x[2], -x[3]]))
    assert torch.equal(route_rows(1, paths, x), x)
    assert torch.equal(route_rows(torch.tensor([0, 0, 0, 0]), paths, x), 10 * x)


def test_domain_routed_objective_routes_by_the_batch(toy, feats, randomize) -> None:
    model, _ = mda_model(toy, randomize)
    x, n = feats()
    batch = SimpleNamespace(features=x, lengths=n, domains=torch.tensor([2, 2, 0]))

    def objective(m, b):
        return m(b.features, b.lengths).sum(), {}

    loss, _ = DomainRoutedObjective(objective)(model, batch)
    with domain_context(model, torch.tensor([2, 2, 0])):
        assert torch.equal(loss, model(x, n).sum())
    with pytest.raises(SemiasrError, match="no domain ids"):
        objective(model, batch)


def test_deepcopy_of_an_mda_model_routes_with_its_own_state(toy, feats, randomize) -> None:
    model, _ = mda_model(toy, randomize)
    twin = copy.deepcopy(model)
    x, n = feats()
    domains = torch.tensor([1, 2, 0])
    with domain_context(twin, domains):
        out = twin(x, n)
    with domain_context(model, domains):
        assert torch.equal(out, model(x, n))
        with pytest.raises(SemiasrError, match="no domain ids"):
            twin(x, n)  # the original's context is not the copy's
    randomize(twin.domain_modules, seed=3)
    with domain_context(twin, 1), domain_context(model, 1):
        assert not torch.allclose(twin(x, n), model(x, n))
