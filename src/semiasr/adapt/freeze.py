"""Which parameters train: freezing by dotted-name globs, and a table of trainable vs frozen counts.

``freeze_all_but(model, ["adapters", "predictor.*", "joiner"])`` sets ``requires_grad`` on the
parameters whose name or one of its module prefixes matches a pattern and clears it everywhere else
(see ``semiasr.adapt.names`` for the glob rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from semiasr.adapt.names import adapt_state, name_matches_any
from semiasr.errors import ConfigError

__all__ = ["ParamCount", "freeze_all_but", "parameter_summary", "summary_rows", "trainable_names"]


def freeze_all_but(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Train exactly the parameters matching ``patterns``; returns their names. Raises ConfigError
    when a pattern matches no parameter (a typo would otherwise freeze everything silently)."""
    names = [n for n, _ in model.named_parameters()]
    for pat in patterns:
        if not any(name_matches_any(n, [pat]) for n in names):
            raise ConfigError(f"pattern {pat!r} matches no parameter; e.g. {names[:6]}", key=pat)
    trained = []
    for name, p in model.named_parameters():
        p.requires_grad_(name_matches_any(name, patterns))
        if p.requires_grad:
            trained.append(name)
    return trained


def trainable_names(model: nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


@dataclass
class ParamCount:
    """Parameter counts of one part of the model."""

    part: str
    total: int
    trainable: int

    @property
    def frozen(self) -> int:
        return self.total - self.trainable


def _part_of(name: str, prefixes: Sequence[str]) -> str:
    """The row a parameter is counted in: its top-level module, or for adaptation containers
    ``adapters[encoder]`` etc. by the module they are attached to; LoRA branches (which sit on
    their Linear) in ``lora[<top-level module>]``."""
    head, _, rest = name.partition(".")
    parts = name.split(".")
    if len(parts) > 2 and parts[-2] == "lora" and parts[-1] in ("A", "B"):
        return f"lora[{head}]"
    if head in prefixes:
        target = rest.partition(".")[0].partition("-")[0]
        return f"{head}[{target}]" if head != "fusion" else head
    return head


def summary_rows(model: nn.Module) -> list[ParamCount]:
    """One ParamCount per part (top-level module or adaptation container), in model order."""
    prefixes = adapt_state(model).prefixes
    rows: dict[str, ParamCount] = {}
    for name, p in model.named_parameters():
        row = rows.setdefault(_part_of(name, prefixes), ParamCount(_part_of(name, prefixes), 0, 0))
        row.total += p.numel()
        row.trainable += p.numel() if p.requires_grad else 0
    return list(rows.values())


def parameter_summary(model: nn.Module, encoder: str = "encoder") -> str:
    """A plain-text table: per part, parameters in total, trainable, frozen, and trainable as % of
    the base encoder's size (the measure the HFF and adapter papers report)."""
    rows = summary_rows(model)
    enc_total = sum(r.total for r in rows if r.part == encoder) or sum(r.total for r in rows)
    total = ParamCount("total", sum(r.total for r in rows), sum(r.trainable for r in rows))
    lines = [f"{'part':<24}{'params':>12}{'trainable':>12}{'frozen':>12}{'% of enc':>10}"]
    for r in [*rows, total]:
        pct = 100.0 * r.trainable / enc_total
        lines.append(f"{r.part:<24}{r.total:>12,}{r.trainable:>12,}{r.frozen:>12,}{pct:>9.2f}%")
    return "\n".join(lines)
