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
from semiasr.errors import ConfigError
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


def conv_adapted(
    causal: bool = False, positions=("output",), kernel: int = 5, adapter_positions_none=False, **kw
):
    """The test transducer (float64, causal or not) with convolution adapters of ``kernel`` at
    ``positions``; with ``adapter_positions_none`` the bare model instead."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        d_model=16, num_layers=3, num_heads=2, predictor_dim=8, joiner_dim=8, conv_kernel=3,
        causal=causal,
    )  # fmt: skip
    model = build_model(cfg, vocab_size=6, feat_dim=8).double().eval()
    if adapter_positions_none:
        return model
    return prepare_adaptation(
        model, "adapters", bottleneck=4, adapter_conv_kernel=kernel,
        adapter_positions=list(positions), **kw,
    )  # fmt: skip


def randomize_conv_adapters(model) -> None:
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for a in model.adapters.values():
            for p in a.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)


@pytest.mark.parametrize("causal", [False, True])
def test_a_fresh_convolution_is_the_identity_and_its_kernel_trains(causal) -> None:
    """With every other part of the adapter random, a fresh convolution changes nothing: the
    adapter's branch equals the plain adapter's, up(act(down(LN(x))))."""
    model = conv_adapted(causal=causal, kernel=5)
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for a in model.adapters.values():
            for part in (a.norm, a.down, a.up):
                for p in part.parameters():
                    p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    x = torch.randn(2, 9, 16, dtype=torch.float64, generator=g)
    mask = torch.ones(2, 9, dtype=torch.bool)
    for a in model.adapters.values():
        assert a.conv.weight.shape == (4, 1, 5)
        plain = a.up(torch.relu(a.down(a.norm(x))))
        assert torch.equal(a.delta(x, mask), plain)
    xb, n, y = inputs()
    model(xb, n, y).logits.square().sum().backward()
    assert all(a.conv.weight.grad.abs().sum() > 0 for a in model.adapters.values())
    assert all(p.grad is None for p in model.encoder.parameters())


def test_a_convolution_adapter_computes_its_formula() -> None:
    """y = x + W_up dwconv(act(W_down LN(x) + b_down)) + b_up, the convolution over time with
    (k - 1) / 2 zero frames on each side and padded frames zeroed, checked by hand in float64."""
    model = conv_adapted(kernel=3)
    randomize_conv_adapters(model)
    a = model.adapters["encoder-layers-0"]
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    h = torch.relu(a.down(a.norm(x))) * mask[..., None]
    w, b = a.conv.weight[:, 0], a.conv.bias  # (r, 3), (r,)
    hp = torch.nn.functional.pad(h, (0, 0, 1, 1))
    conv = sum(hp[:, j : j + 7] * w[:, j] for j in range(3)) + b
    torch.testing.assert_close(a(x, mask), x + a.up(conv), rtol=0, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_convolution_adapters_do_not_see_padding(causal) -> None:
    """An utterance gives the same encoder output alone and padded in a batch with longer ones,
    with convolution adapters after the blocks, the convolution modules and their depthwise
    convolutions (which take the module's padding mask and pass it on to the adapter)."""
    model = conv_adapted(causal=causal, positions=("output", "conv", "conv.depthwise"))
    assert "encoder-layers-0-conv-depthwise" in model.adapters
    randomize_conv_adapters(model)
    x, n, _ = inputs()
    with torch.no_grad():
        batch = model.encoder(x, n).frames
        for b in range(3):
            alone = model.encoder(x[b : b + 1, : n[b]], n[b : b + 1]).frames
            t = alone.shape[1]
            torch.testing.assert_close(batch[b : b + 1, :t], alone, rtol=0, atol=1e-12)


@pytest.mark.parametrize("how", ["prepare_adaptation", "add_adapters"])
def test_causal_convolution_adapters_keep_a_streaming_encoder_causal(how) -> None:
    if how == "prepare_adaptation":
        model = conv_adapted(causal=True, kernel=5)
    else:  # the lower-level API finds the encoder's causality itself
        model = conv_adapted(causal=True, kernel=0, adapter_positions_none=True)
        add_adapters(model, "encoder.layers.*", ["output", "conv"], bottleneck=4, conv_kernel=5)
    randomize_conv_adapters(model)
    assert all(a.padding == (4, 0) for a in model.adapters.values())
    x, n, _ = inputs()
    x, n = x[:1], n[:1]
    with torch.no_grad():
        ref = model.encoder(x, n).frames
        changed = x.clone()
        changed[:, 16:] += 1.0  # later input: earlier outputs of a causal encoder stay the same
        out = model.encoder(changed, n).frames
    t = 16 // 4 - 1  # frames whose receptive field ends before input frame 16 (4x subsampling)
    torch.testing.assert_close(out[:, :t], ref[:, :t], rtol=0, atol=1e-12)
    assert not torch.allclose(out, ref)


def test_convolution_adapters_round_trip_and_refuse_where_they_cannot_mask(tmp_path) -> None:
    model = conv_adapted(kernel=3)
    randomize_conv_adapters(model)
    save_adaptation(tmp_path / "a.pt", model)
    loaded = load_adaptation(tmp_path / "a.pt", transducer())
    x, n, y = inputs()
    with torch.no_grad():
        assert torch.equal(loaded(x, n, y).logits, model(x, n, y).logits)
    # refused at set-up: the feed-forward and attention modules take no padding mask
    for position in ("ff1", "attn"):
        with pytest.raises(ConfigError, match=f"{position} needs the padding mask"):
            conv_adapted(positions=(position,))
    with pytest.raises(ConfigError, match="adapter_conv_kernel"):
        conv_adapted(kernel=4)  # even, full-context
    with pytest.raises(ConfigError, match="not 'mda'"):
        prepare_adaptation(transducer(), "mda", adapter_conv_kernel=3)


def test_convolution_adapters_of_a_causal_encoder_do_not_load_into_a_full_context_one(
    tmp_path,
) -> None:
    from semiasr.errors import CheckpointError

    model = conv_adapted(causal=True, kernel=3)
    save_adaptation(tmp_path / "a.pt", model)
    base = transducer()  # the same weights (causality changes no parameter), full context
    with pytest.raises(CheckpointError, match=r"trained in a causal .* full-context"):
        load_adaptation(tmp_path / "a.pt", base)
    assert not hasattr(base, "adapters")  # refused before anything was added
