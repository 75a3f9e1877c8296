"""The adaptation methods on the real Conformer transducer (semiasr.models), not only the toy."""

from __future__ import annotations

import pytest
import torch

from semiasr.adapt import (
    METHODS,
    add_adapters,
    apply_lora,
    domain_context,
    freeze_all_but,
    load_adaptation,
    merge_lora,
    prepare_adaptation,
    save_adaptation,
)
from semiasr.models import build_model
from semiasr.models.config import ModelConfig

OPTS = {
    "full": {},
    "decoder": {},
    "adapters": {"bottleneck": 4, "adapter_positions": ["output", "ff2"]},
    "lora": {"lora_rank": 2},
    "mda": {"bottleneck": 4, "num_domains": 2},
    "hff": {"fusion": "hierarchical", "fusion_group": 2},
    "hff+adapters": {"bottleneck": 4, "fusion": "weighted"},
}


def transducer(seed: int = 0, dtype: torch.dtype = torch.float64):
    torch.manual_seed(seed)
    cfg = ModelConfig(
        d_model=16, num_layers=3, num_heads=2, predictor_dim=8, joiner_dim=8, conv_kernel=3
    )
    return build_model(cfg, vocab_size=6, feat_dim=8).to(dtype).eval()


def inputs(dtype: torch.dtype = torch.float64):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 24, 8, generator=g, dtype=dtype)
    return x, torch.tensor([24, 17, 12]), torch.tensor([[1, 2], [3, 0], [5, 4]])


def test_zero_adapters_leave_the_transducer_bit_identical() -> None:
    model = transducer(dtype=torch.float32)
    x, n, y = inputs(torch.float32)
    before = model(x, n, y).logits
    added = add_adapters(model, "encoder.layers.*", ["output", "ff1", "ff2", "attn"], bottleneck=4)
    assert len(added) == 12
    assert torch.equal(model(x, n, y).logits, before)


def test_parallel_adapters_on_the_transducer_start_as_the_identity_and_train() -> None:
    """Beside every module of the Conformer block, the attention and convolution modules taking
    extra positional arguments (mask, positions) included."""
    model = transducer(dtype=torch.float32)
    x, n, y = inputs(torch.float32)
    before = model(x, n, y).logits
    positions = ["ff1", "attn", "conv", "ff2", "output"]
    add_adapters(model, "encoder.layers.*", positions, bottleneck=4, mode="parallel", scale=4.0)
    assert len(model.adapters) == 15
    assert torch.equal(model(x, n, y).logits, before)
    freeze_all_but(model, ["adapters"])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):  # the first step moves only the zero-initialised up-projections
        opt.zero_grad()
        model(x, n, y).logits.logsumexp(-1).sum().backward()
        opt.step()
    assert all(a.down.weight.grad.abs().sum() > 0 for a in model.adapters.values())
    assert not torch.allclose(model(x, n, y).logits, before)


def test_merged_lora_equals_unmerged_on_the_transducer(randomize) -> None:
    model = transducer(dtype=torch.float32)
    x, n, y = inputs(torch.float32)
    added = apply_lora(model, ["encoder.layers.*.attn.**", "encoder.layers.*.ff*.**"], rank=2)
    assert "encoder.layers.0.attn.mhsa.linear_q" in added
    for i, lora in enumerate(added.values()):
        randomize(lora, seed=i, scale=0.1)
    unmerged = model(x, n, y).logits
    merge_lora(model)
    torch.testing.assert_close(model(x, n, y).logits, unmerged, rtol=0, atol=1e-6)


def test_mda_on_the_transducer_source_exact_and_domains_separate(randomize) -> None:
    base = transducer().requires_grad_(False)  # CPU kernels round differently with autograd on
    model = prepare_adaptation(transducer(), "mda", **OPTS["mda"])
    for name, m in [*model.domain_modules.items(), *model.adapters.items()]:
        randomize(m, seed=len(name), scale=0.1)
    x, n, y = inputs()
    domains = torch.tensor([0, 1, 0])
    with domain_context(model, domains):
        out = model(x, n, y).logits
    assert torch.equal(out[[0, 2]], base(x, n, y).logits[[0, 2]])
    model.requires_grad_(True)  # even with everything trainable, a source batch …
    with domain_context(model, torch.zeros(3, dtype=torch.long)):
        model(x, n, y).logits.sum().backward()
    assert model.encoder.layers[0].ff1.linear1.weight.grad is not None  # … trains the source
    assert all(p.grad is None for p in model.domain_modules.parameters())
    assert all(p.grad is None for p in model.adapters.parameters())  # … and no target module


@pytest.mark.parametrize("targets", [["conv"], ["attn"], ["ff1", "attn", "conv", "ff2"]])
def test_mda_routes_modules_that_take_masks_row_by_row(randomize, targets) -> None:
    """conv takes the padding mask and attn the attention mask, one row per utterance: in a
    mixed-domain batch each domain's rows must get their own rows of the masks."""
    model = prepare_adaptation(
        transducer(), "mda", num_domains=3, bottleneck=4, domain_modules=targets
    )
    for name, m in [*model.domain_modules.items(), *model.adapters.items()]:
        randomize(m, seed=len(name), scale=0.1)
    x, n, y = inputs()
    domains = torch.tensor([2, 0, 1])
    with domain_context(model, domains):
        mixed = model(x, n, y).logits
    for b in range(3):  # each utterance alone, with its domain
        t, u = int(n[b]), int((y[b] > 0).sum())
        with domain_context(model, int(domains[b])):
            alone = model(x[b : b + 1, :t], n[b : b + 1], y[b : b + 1, :u]).logits
        frames = alone.shape[1]
        torch.testing.assert_close(mixed[b, :frames, : u + 1], alone[0], rtol=0, atol=1e-10)


def test_hff_on_the_transducer_keeps_the_encoder_out_of_autograd(randomize) -> None:
    model = prepare_adaptation(transducer(), "hff", **OPTS["hff"])
    randomize(model.fusion)
    x, n, y = inputs()
    out = model(x, n, y, return_hidden=True)
    enc = out.encoder
    assert len(enc.hidden) == 3 and not any(h.requires_grad for h in enc.hidden)
    torch.testing.assert_close(
        enc.frames,
        model.fusion["net"](enc.hidden)[:, : enc.frames.shape[1]].masked_fill(
            ~(torch.arange(enc.frames.shape[1])[None, :] < enc.lengths[:, None])[..., None], 0.0
        ),
        rtol=0,
        atol=0,
    )
    out.logits.sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.fusion.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_and_round_trips_on_the_transducer(tmp_path, method) -> None:
    model = prepare_adaptation(transducer(), method, **OPTS[method])
    x, n, y = inputs()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    with domain_context(model, torch.tensor([1, 1, 0])) if method == "mda" else torch.enable_grad():
        for _ in range(2):
            opt.zero_grad()
            model(x, n, y).logits.logsumexp(-1).sum().backward()
            opt.step()
    save_adaptation(tmp_path / "a.pt", model)
    loaded = load_adaptation(tmp_path / "a.pt", transducer())
    with domain_context(model, 1) if method == "mda" else torch.no_grad():
        expected = model(x, n, y).logits
    with domain_context(loaded, 1) if method == "mda" else torch.no_grad():
        assert torch.equal(loaded(x, n, y).logits, expected)


def test_a_front_end_adapter_starts_as_the_identity_and_trains() -> None:
    x, n, y = inputs(torch.float32)
    # against the same method without it (freezing alone changes which CPU kernels run)
    plain = prepare_adaptation(transducer(dtype=torch.float32), "adapters", bottleneck=4)
    model = transducer(dtype=torch.float32)
    prepare_adaptation(model, "adapters", bottleneck=4, adapter_extra=["subsampling"])
    assert "encoder-subsampling" in model.adapters and len(model.adapters) == 4  # + 3 blocks
    assert torch.equal(model(x, n, y).logits, plain(x, n, y).logits)
    model(x, n, y).logits.square().sum().backward()
    assert model.adapters["encoder-subsampling"].up.weight.grad.abs().sum() > 0
    assert model.encoder.subsampling.out.weight.grad is None  # the front end itself stays frozen
