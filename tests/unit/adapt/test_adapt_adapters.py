from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from semiasr.adapt import ResidualAdapter, add_adapters, freeze_all_but
from semiasr.adapt.adapters import infer_width
from semiasr.errors import ConfigError


@pytest.mark.parametrize("positions", [("output",), ("ff2",), ("output", "ff1", "attn")])
def test_zero_initialised_adapters_leave_outputs_bit_identical(toy, feats, positions) -> None:
    model = toy(dtype=torch.float32)
    x, n = feats(dtype=torch.float32)
    before = model(x, n)
    added = add_adapters(model, "encoder.layers.*", positions, bottleneck=3)
    assert len(added) == 4 * len(positions)
    assert torch.equal(model(x, n), before)


def test_adapter_computes_its_formula(randomize) -> None:
    adapter = ResidualAdapter(5, 2, act="gelu").double()
    randomize(adapter)
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    ln = nn.functional.layer_norm(x, (5,), adapter.norm.weight, adapter.norm.bias)
    hidden = nn.functional.gelu(ln @ adapter.down.weight.T + adapter.down.bias)
    expected = x + hidden @ adapter.up.weight.T + adapter.up.bias
    torch.testing.assert_close(adapter(x), expected, rtol=0, atol=1e-12)


def test_adapters_change_the_output_once_trained(toy, feats, randomize) -> None:
    model = toy()
    x, n = feats()
    before = model(x, n)
    added = add_adapters(model, "encoder.layers.*", ["output"], bottleneck=3)
    randomize(added["encoder.layers.2"])
    after = model(x, n)
    assert not torch.allclose(after, before)
    # the adapter sits on layer 2's output: by hand
    h = model.encoder.proj_in(x)
    for i, layer in enumerate(model.encoder.layers):
        h = type(layer).forward(layer, h)
        h = added[f"encoder.layers.{i}"](h)
    torch.testing.assert_close(after, model.joiner(torch.tanh(h)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("positions", [("output",), ("ff1", "ff2")])
def test_zero_initialised_parallel_adapters_leave_outputs_bit_identical(
    toy, feats, positions
) -> None:
    model = toy(dtype=torch.float32)
    x, n = feats(dtype=torch.float32)
    before = model(x, n)
    add_adapters(model, "encoder.layers.*", positions, bottleneck=3, mode="parallel", scale=4.0)
    assert torch.equal(model(x, n), before)


def test_parallel_adapter_reads_the_module_input(toy, feats, randomize) -> None:
    """y = f(x) + s · A.delta(x) beside each block's ff1, checked by hand in float64."""
    model = toy()
    x, n = feats()
    added = add_adapters(
        model, "encoder.layers.*", ["ff1"], bottleneck=3, mode="parallel", scale=2.5
    )
    for adapter in added.values():
        randomize(adapter)
    h = model.encoder.proj_in(x)
    for i, layer in enumerate(model.encoder.layers):
        a = added[f"encoder.layers.{i}.ff1"]
        f1 = type(layer.ff1).forward(layer.ff1, h)
        ln = nn.functional.layer_norm(h, h.shape[-1:], a.norm.weight, a.norm.bias)
        branch = torch.relu(ln @ a.down.weight.T + a.down.bias) @ a.up.weight.T + a.up.bias
        h = h + 0.5 * (f1 + 2.5 * branch)
        h = h + layer.attn(h)
        h = h + 0.5 * layer.ff2(h)
        h = layer.norm_out(h)
    torch.testing.assert_close(model(x, n), model.joiner(torch.tanh(h)), rtol=0, atol=1e-12)
    # serial adapters at the same places compute something else
    serial = toy()
    serial.load_state_dict(model.state_dict(), strict=False)
    for name, adapter in add_adapters(serial, "encoder.layers.*", ["ff1"], bottleneck=3).items():
        adapter.load_state_dict(added[name].state_dict())
    assert not torch.allclose(serial(x, n), model(x, n))


def test_unknown_adapter_mode_is_refused(toy) -> None:
    with pytest.raises(ConfigError, match="adapter mode"):
        add_adapters(toy(), "encoder.layers.*", ["ff1"], mode="sideways")


class _Widen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 6)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden_states)


class _Holder(nn.Module):
    """Calls its inner module with a keyword argument, as Hugging Face layers do."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(hidden_states=x)


class _Square(nn.Linear):
    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return super().forward(hidden_states)


def test_parallel_adapter_finds_a_keyword_input(randomize) -> None:
    model = _Holder(_Square(4, 4)).double()
    added = add_adapters(model, "inner", ["output"], bottleneck=2, mode="parallel", scale=3.0)
    randomize(added["inner"])
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    expected = model.inner.weight @ x.unsqueeze(-1)
    expected = expected.squeeze(-1) + model.inner.bias + 3.0 * added["inner"].delta(x)
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-12)


def test_parallel_adapter_refuses_a_module_that_changes_the_width() -> None:
    model = _Holder(_Widen())
    add_adapters(model, "inner", ["output"], bottleneck=2, mode="parallel", d_model=6)
    with pytest.raises(ConfigError, match=r"inner to keep the width 6: its input has 4"):
        model(torch.randn(1, 3, 4))


def test_deepcopy_of_a_parallel_adapted_model_is_independent(toy, feats, randomize) -> None:
    model = toy()
    add_adapters(model, "encoder.layers.*", ["ff2"], bottleneck=3, mode="parallel", scale=2.0)
    x, n = feats()
    clone = copy.deepcopy(model)
    randomize(model.adapters)
    assert torch.equal(clone(x, n), toy()(x, n))  # the clone's adapters are still zero
    assert not torch.allclose(model(x, n), clone(x, n))


def test_base_parameter_names_are_unchanged(toy) -> None:
    model = toy()
    base_keys = set(model.state_dict())
    add_adapters(model, "encoder.layers.*", ["ff2"], bottleneck=3)
    keys = set(model.state_dict())
    assert base_keys <= keys
    assert all(k.startswith("adapters.encoder-layers-") for k in keys - base_keys)
    model.load_state_dict(toy(seed=5).state_dict(), strict=False)  # a base checkpoint still loads


def test_only_adapters_change_after_an_optimizer_step(toy, feats) -> None:
    model = toy()
    add_adapters(model, "encoder.layers.*", ["output"], bottleneck=3)
    trained = freeze_all_but(model, ["adapters"])
    assert trained and all(n.startswith("adapters.") for n in trained)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, n = feats()
    for _ in range(3):  # W_up starts at zero: the rest of an adapter moves from step 2 on
        opt.zero_grad()
        model(x, n).pow(2).sum().backward()
        opt.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {k for k in before if k.startswith("adapters.")}


def test_deepcopy_of_an_adapted_model_is_independent(toy, feats, randomize) -> None:
    model = toy()
    added = add_adapters(model, "encoder.layers.*", ["output"], bottleneck=3)
    randomize(added["encoder.layers.0"])
    twin = copy.deepcopy(model)
    x, n = feats()
    assert torch.equal(twin(x, n), model(x, n))
    randomize(twin.adapters["encoder-layers-0"], seed=11)
    assert not torch.equal(twin(x, n), model(x, n))


def test_add_adapters_refuses_twice_and_bad_roots(toy) -> None:
    model = toy()
    add_adapters(model, "encoder.layers.0", bottleneck=2)
    with pytest.raises(ConfigError, match="already has an adapter"):
        add_adapters(model, "encoder.layers.0", bottleneck=2)
    with pytest.raises(ConfigError, match="Sequential"):
        add_adapters(nn.Sequential(nn.Linear(3, 3)), "0", bottleneck=2)
    with pytest.raises(ConfigError, match="no block"):
        add_adapters(model, "decoder.layers.*", bottleneck=2)


def test_infer_width(toy) -> None:
    model = toy(d=12)
    assert infer_width(model.encoder.layers[0]) == 12
    assert infer_width(model.encoder.layers[0].ff2) == 12
    assert infer_width(nn.Conv1d(5, 7, 3)) == 7
    with pytest.raises(ConfigError, match="width"):
        infer_width(nn.ReLU())


@pytest.mark.parametrize("path", ["kernels", "toeplitz"])
@pytest.mark.parametrize(
    ("t", "k", "padding"),
    [(77, 7, (3, 3)), (77, 7, (6, 0)), (5, 31, (15, 15)), (200, 31, (30, 0)), (33, 65, (32, 32))],
)
def test_time_conv_equals_the_depthwise_conv1d(t, k, padding, path, monkeypatch) -> None:
    """Both paths of the adapters' depthwise convolution (the numba kernels, which a float64 CPU
    tensor takes, and the block-Toeplitz matrix products) against torch's, values and gradients
    in float64: short inputs (fewer frames than taps), causal padding, kernels longer than a
    block."""
    from semiasr.adapt.adapters import time_conv

    taken = _force_path(monkeypatch, path)

    g = torch.Generator().manual_seed(t + k)
    conv = nn.Conv1d(5, 5, k, groups=5).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g, dtype=torch.float64))
    h = torch.randn(3, t, 5, generator=g, dtype=torch.float64, requires_grad=True)
    ours = time_conv(h, conv, padding)
    ref = conv(nn.functional.pad(h.transpose(1, 2), padding)).transpose(1, 2)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    params = (h, conv.weight, conv.bias)
    g_ours = torch.autograd.grad(ours.square().sum(), params)
    g_ref = torch.autograd.grad(ref.square().sum(), params)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-10)
    assert taken == [path == "kernels"]


def test_time_conv_passes_gradcheck() -> None:
    from semiasr.adapt.adapters import _TimeConv

    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 9, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h, w: _TimeConv.apply(h, w, 4, 0), (h, w))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_time_conv_trains_under_bf16_autocast(dtype) -> None:
    """Mixed precision: a float32 or bfloat16 input under CPU autocast runs forward and backward
    in the input's dtype (the matrix products do not switch dtype between the passes)."""
    from semiasr.adapt.adapters import time_conv

    conv = nn.Conv1d(8, 8, 5, groups=8)
    h = torch.randn(2, 30, 8, dtype=dtype, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = time_conv(h, conv, (2, 2))
    y.float().square().sum().backward()
    assert y.dtype == dtype and h.grad.dtype == dtype
    assert conv.weight.grad.dtype == torch.float32 and conv.weight.grad.abs().sum() > 0


def _force_path(monkeypatch, path: str) -> list[bool]:
    """Make time_conv take ``path`` ("kernels" where the tensors allow it, or "toeplitz"); the
    returned list records what each call took."""
    from semiasr.adapt import adapters

    taken: list[bool] = []
    real = adapters.runs_kernels

    def spy(*args):
        taken.append(path == "kernels" and real(*args))
        return taken[-1]

    monkeypatch.setattr(adapters, "runs_kernels", spy)
    return taken


@pytest.mark.parametrize("path", ["kernels", "toeplitz"])
def test_time_conv_reads_no_padded_frame(path, monkeypatch) -> None:
    """With the padding mask, both paths give the sums over the valid frames only, float64, values
    and gradients, with NaN in the padded frames (which get no gradient); an adapter with a
    convolution gives the same output whatever its padded frames hold."""
    from semiasr.adapt.adapters import ResidualAdapter, time_conv

    taken = _force_path(monkeypatch, path)
    g = torch.Generator().manual_seed(7)
    conv = nn.Conv1d(5, 5, 31, groups=5).double()
    lens = torch.tensor([60, 17, 44])
    valid = torch.arange(60)[None] < lens[:, None]
    h = torch.randn(3, 60, 5, generator=g, dtype=torch.float64)
    poisoned = h.masked_fill(~valid[..., None], float("nan")).requires_grad_(True)
    clean = h.masked_fill(~valid[..., None], 0.0).requires_grad_(True)
    ours = time_conv(poisoned, conv, (15, 15), valid)
    ref = conv(nn.functional.pad(clean.transpose(1, 2), (15, 15))).transpose(1, 2)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    g_ours = torch.autograd.grad(ours.square().sum(), (poisoned, conv.weight, conv.bias))
    g_ref = torch.autograd.grad(ref.square().sum(), (clean, conv.weight, conv.bias))
    torch.testing.assert_close(g_ours[0][valid], g_ref[0][valid], rtol=1e-12, atol=1e-10)
    assert not g_ours[0][~valid].any()
    for a, b in zip(g_ours[1:], g_ref[1:]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-10)
    adapter = ResidualAdapter(5, 4, conv_kernel=31).double()
    nn.init.normal_(adapter.up.weight)  # not the zero initialisation: the branch must show
    nn.init.normal_(adapter.conv.weight)  # nor the identity kernel, which reads one frame only
    x = torch.randn(3, 60, 5, generator=g, dtype=torch.float64)
    x2 = x.masked_fill(~valid[..., None], 1e6)
    torch.testing.assert_close(
        adapter(x, valid)[valid], adapter(x2, valid)[valid], rtol=0, atol=1e-12
    )
    assert taken == [path == "kernels"] * 3


@pytest.mark.parametrize("path", ["kernels", "toeplitz"])
def test_time_conv_refuses_an_input_shorter_than_its_kernel(path, monkeypatch) -> None:
    from semiasr.adapt.adapters import time_conv

    taken = _force_path(monkeypatch, path)
    with pytest.raises(ValueError, match="needs at least 5 frames; got 3"):
        time_conv(torch.randn(1, 3, 8), nn.Conv1d(8, 8, 5, groups=8), (0, 0))
    assert taken == [path == "kernels"]


@pytest.mark.parametrize("path", ["kernels", "toeplitz"])
def test_time_conv_refuses_double_backward_and_other_convolutions(path, monkeypatch) -> None:
    """Its backward (either path's) is written out without a graph of its own: a second
    derivative raises instead of coming out wrong; a convolution that is not a plain depthwise
    one is refused."""
    from semiasr.adapt.adapters import time_conv

    taken = _force_path(monkeypatch, path)

    conv = nn.Conv1d(4, 4, 3, groups=4).double()
    h = torch.randn(2, 9, 4, dtype=torch.float64, requires_grad=True)
    (gh,) = torch.autograd.grad(time_conv(h, conv, (1, 1)).square().sum(), h, create_graph=True)
    with pytest.raises(RuntimeError, match=r"once_differentiable|not have been used"):
        torch.autograd.grad(gh.square().sum(), (h, conv.weight))
    assert taken == [path == "kernels"]
    for bad in (nn.Conv1d(4, 4, 3), nn.Conv1d(4, 4, 3, groups=4, dilation=2)):
        with pytest.raises(ValueError, match="depthwise"):
            time_conv(h.float(), bad, (1, 1))
