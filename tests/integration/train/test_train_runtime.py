"""Device and precision choice, seeding and the random-state round trip."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch

from semiasr.errors import ConfigError
from semiasr.train import ObjectiveModule, resolve_device, resolve_precision, set_seed
from semiasr.train.runtime import (
    cpu_has_native_bf16,
    flush_denormal,
    flush_denormal_enabled,
    rng_state,
    set_rng_state,
)


def _draw() -> tuple:
    return (
        random.random(),
        float(np.random.normal()),  # noqa: NPY002
        float(torch.rand(())),
        float(torch.randn(())),
    )


def test_rng_state_round_trips_through_a_weights_only_checkpoint():
    set_seed(3)
    _draw()
    buf = io.BytesIO()
    torch.save(rng_state(), buf)
    expected = _draw()
    set_seed(4)
    buf.seek(0)
    set_rng_state(torch.load(buf, weights_only=True))
    assert _draw() == expected
    set_seed(3)
    first = _draw()
    set_seed(3)
    assert _draw() == first


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda:0")
    with pytest.raises(ConfigError, match="device 'tpu"):
        resolve_device("tpu")


def test_resolve_precision(tmp_path):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"  # autocast bf16 runs on CPU in torch 2.x
    with pytest.raises(ConfigError, match=r"train\.precision"):
        resolve_precision("fp16", cpu)
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_has_native_bf16() else "fp32")
    fake = tmp_path / "cpuinfo"
    fake.write_text("flags : fpu sse avx2 amx_bf16\n")
    assert cpu_has_native_bf16(fake)
    fake.write_text("flags : fpu sse avx2\n")
    assert not cpu_has_native_bf16(fake)
    assert not cpu_has_native_bf16(tmp_path / "missing")


def test_objective_module_routes_forward_through_the_objective():
    model = torch.nn.Linear(2, 1)
    calls = []

    def objective(m, batch):
        calls.append(m)
        return m(batch).sum(), {}

    wrapper = ObjectiveModule(model, objective)
    loss, _ = wrapper(torch.ones(3, 2))
    loss.backward()
    assert calls == [model] and model.weight.grad is not None
    assert [n for n, _ in wrapper.named_parameters()] == ["model.weight", "model.bias"]

    class WithParams(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, m, batch):
            return self.scale * m(batch).sum(), {}

    wrapper = ObjectiveModule(model, WithParams())
    assert "objective.scale" in dict(wrapper.named_parameters())


@pytest.mark.skipif(
    not torch.set_flush_denormal(False), reason="this CPU has no flush-to-zero mode"
)
def test_flush_denormal_reads_sets_and_restores_the_mode():
    subnormal = torch.tensor([1e-40], dtype=torch.float64).float()  # made while IEEE
    assert subnormal.item() != 0.0 and not flush_denormal_enabled()
    with flush_denormal():
        assert flush_denormal_enabled()
        assert (subnormal * 1.0).item() == 0.0
        with flush_denormal(False):  # nested: IEEE inside, flushing again after
            assert not flush_denormal_enabled() and (subnormal * 1.0).item() != 0.0
        assert flush_denormal_enabled()
    assert not flush_denormal_enabled()
    with pytest.raises(RuntimeError), flush_denormal():
        raise RuntimeError("the mode comes back on an exception too")
    assert not flush_denormal_enabled()
