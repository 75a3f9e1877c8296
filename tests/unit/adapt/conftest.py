"""A tiny transducer-shaped model for the adaptation tests: encoder (input projection + a stack of
blocks with ff1/attn/ff2 Linears and an output norm), predictor and joiner."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch import Tensor, nn


class ToyFF(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.linear1 = nn.Linear(d, 2 * d)
        self.linear2 = nn.Linear(2 * d, d)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(torch.relu(self.linear1(self.norm(x))))


class ToyAttn(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        w = torch.softmax(self.q(x) @ self.k(x).transpose(1, 2) / x.shape[-1] ** 0.5, dim=-1)
        return self.out(w @ self.v(x))


class ToyBlock(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.ff1, self.attn, self.ff2 = ToyFF(d), ToyAttn(d), ToyFF(d)
        self.norm_out = nn.LayerNorm(d)

    def forward(self, x: Tensor) -> Tensor:
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(x)
        x = x + 0.5 * self.ff2(x)
        return self.norm_out(x)


class ToyEncoder(nn.Module):
    def __init__(self, feat: int, d: int, num_layers: int):
        super().__init__()
        self.proj_in = nn.Linear(feat, d)
        self.layers = nn.ModuleList(ToyBlock(d) for _ in range(num_layers))

    def forward(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = self.proj_in(features)
        for layer in self.layers:
            x = layer(x)
        return x, lengths


class ToyModel(nn.Module):
    """features (B, T, F) -> per-frame logits (B, T, V), conditioned on a one-token context."""

    def __init__(self, feat: int = 6, d: int = 16, num_layers: int = 4, vocab: int = 5):
        super().__init__()
        self.encoder = ToyEncoder(feat, d, num_layers)
        self.predictor = nn.Embedding(vocab, d)
        self.joiner = nn.Linear(d, vocab)

    def forward(
        self, features: Tensor, lengths: Tensor, context: Tensor | None = None, batch: object = None
    ) -> Tensor:
        """``batch``: ignored here; a Batch passed to the root carries the domain ids for MDA."""
        frames, _ = self.encoder(features, lengths)
        if context is not None:
            frames = frames + self.predictor(context)[:, None, :]
        return self.joiner(torch.tanh(frames))


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These tests use tiny tensors: threads only add overhead (and on a shared machine, a lot)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def toy() -> Callable[..., ToyModel]:
    """make(seed=0, dtype=float64, **sizes) -> ToyModel in eval mode."""

    def make(seed: int = 0, dtype: torch.dtype = torch.float64, **sizes: int) -> ToyModel:
        torch.manual_seed(seed)
        return ToyModel(**sizes).to(dtype).eval()

    return make


@pytest.fixture
def feats() -> Callable[..., tuple[Tensor, Tensor]]:
    """make(B=3, T=7, F=6, seed=1) -> (features float64, lengths)."""

    def make(
        B: int = 3, T: int = 7, F: int = 6, seed: int = 1, dtype: torch.dtype = torch.float64
    ) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(seed)
        return torch.randn(B, T, F, generator=g, dtype=dtype), torch.full((B,), T)

    return make


def randomize_(module: nn.Module, seed: int = 7, scale: float = 0.3) -> None:
    """Give every parameter of ``module`` random values (to test formulas away from zero init)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.fixture
def randomize() -> Callable[..., None]:
    return randomize_
