"""Low-rank adaptation (LoRA) of ``nn.Linear`` layers, attached from outside.

For a frozen projection y = W x + b (W: (out, in)), LoRA adds a trainable low-rank update

    y = W x + b + (α / r) · B A dropout(x)        A: (r, in) Kaiming-uniform, B: (out, r) zero

so the adapted layer starts equal to the base one (Hu et al., "LoRA: Low-Rank Adaptation of Large
Language Models", 2021). ``merge_lora`` folds the update into the weight, W' = W + (α/r)·B A, for
inference at the base layer's cost; ``unmerge_lora`` restores W exactly (merging keeps a copy of W,
which costs one extra weight per adapted layer until unmerged).

The branch is registered on the Linear itself as ``<linear>.lora`` and applied by a forward hook,
so the base weight names (``…q_proj.weight``) do not change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from semiasr.adapt.adapters import place_like
from semiasr.adapt.names import adapt_state, matching_modules
from semiasr.errors import ConfigError

__all__ = ["LoRA", "apply_lora", "lora_layers", "merge_lora", "unmerge_lora"]


class LoRA(nn.Module):
    """The low-rank branch (α/r)·B A dropout(x) of one Linear (in -> out)."""

    def __init__(
        self, in_features: int, out_features: int, rank: int, alpha: float, dropout: float
    ):
        super().__init__()
        if rank < 1:
            raise ConfigError(f"LoRA rank must be ≥ 1, got {rank}", key="lora_rank")
        self.A = nn.Parameter(torch.empty(rank, in_features))
        self.B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)
        self.scale = alpha / rank
        self.merged = False
        self.base_weight: Tensor | None = None  # W before merging; set only while merged

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * (self.dropout(x) @ self.A.t() @ self.B.t())

    def delta_weight(self) -> Tensor:
        """(α/r)·B A, shape (out, in)."""
        return self.scale * (self.B @ self.A)

    def on_output(self, module: nn.Module, args: Any, output: Tensor) -> Tensor:
        """Forward hook of the Linear: add the branch unless it is merged into the weight."""
        return output if self.merged else output + self(args[0])


def apply_lora(
    model: nn.Module,
    target_patterns: str | Sequence[str],
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
) -> dict[str, LoRA]:
    """Attach LoRA to every ``nn.Linear`` whose name matches one of ``target_patterns`` (dotted
    globs, e.g. ``encoder.layers.*.attn.**``). Linears inside ``nn.MultiheadAttention`` are skipped
    because that module reads their weights directly and never calls them. Returns {name: LoRA}."""
    found = matching_modules(model, target_patterns, what="Linear")
    skipped = _inside_multihead_attention(model)
    linears = [(n, m) for n, m in found if isinstance(m, nn.Linear) and n not in skipped]
    if not linears:
        raise ConfigError(
            f"{target_patterns} match no nn.Linear (matched: {[n for n, _ in found][:8]})",
            key="lora_targets",
        )
    state = adapt_state(model)
    added: dict[str, LoRA] = {}
    for name, linear in linears:
        if hasattr(linear, "lora"):
            raise ConfigError(f"{name} already has LoRA", key=name)
        lora = place_like(
            LoRA(linear.in_features, linear.out_features, rank, alpha, dropout), linear
        )
        linear.add_module("lora", lora)
        linear.register_forward_hook(lora.on_output)
        state.attach(name, lora)
        added[name] = lora
    return added


def _inside_multihead_attention(model: nn.Module) -> set[str]:
    return {
        f"{name}.{child}" if name else child
        for name, m in model.named_modules()
        if isinstance(m, nn.MultiheadAttention)
        for child, _ in m.named_children()
    }


def lora_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """{name: Linear} of every Linear in ``model`` that carries LoRA."""
    return {n: m for n, m in model.named_modules() if isinstance(getattr(m, "lora", None), LoRA)}


@torch.no_grad()
def merge_lora(model: nn.Module) -> int:
    """Fold every LoRA branch into its Linear's weight: W <- W + (α/r)·B A. Returns how many."""
    count = 0
    for linear in lora_layers(model).values():
        lora: LoRA = linear.lora
        if lora.merged:
            continue
        lora.base_weight = linear.weight.detach().clone()
        linear.weight.add_(lora.delta_weight().to(linear.weight.dtype))
        lora.merged = True
        count += 1
    return count


@torch.no_grad()
def unmerge_lora(model: nn.Module) -> int:
    """Undo ``merge_lora``: restore each base weight exactly. Returns how many."""
    count = 0
    for linear in lora_layers(model).values():
        lora: LoRA = linear.lora
        if not lora.merged:
            continue
        assert lora.base_weight is not None
        linear.weight.copy_(lora.base_weight)
        lora.base_weight = None
        lora.merged = False
        count += 1
    return count
