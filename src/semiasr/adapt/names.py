"""Dotted-name globs that pick modules and parameters of a model (the rules, e.g.
``encoder.**.ff2``, are in :mod:`semiasr.globs`), and the bookkeeping that adaptation leaves on a
model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import nn

from semiasr.errors import ConfigError
from semiasr.globs import glob_match, name_matches_any

__all__ = [
    "AdaptState",
    "adapt_state",
    "glob_match",
    "join_name",
    "key_of",
    "matching_modules",
    "name_matches_any",
    "root_container",
]


def join_name(*parts: str) -> str:
    """``join_name("encoder", "", "layers.*") == "encoder.layers.*"`` (empty parts dropped)."""
    return ".".join(p for p in parts if p)


def key_of(module_name: str) -> str:
    """The key under which adaptation stores modules for ``module_name`` in a ``ModuleDict``
    (dots are not allowed there): ``encoder.layers.0.ff2`` -> ``encoder-layers-0-ff2``. Python
    attribute names never hold ``-``, so the key is unambiguous."""
    return module_name.replace(".", "-") if module_name else "-"


def matching_modules(
    model: nn.Module, patterns: str | Sequence[str], *, what: str = "module"
) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` pairs of ``model`` whose full name matches one of ``patterns``, in
    registration order. Raises ConfigError naming the patterns when nothing matches."""
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    found = [(n, m) for n, m in model.named_modules() if any(glob_match(n, p) for p in pats)]
    if not found:
        sample = [n for n, _ in model.named_modules() if n][:12]
        raise ConfigError(
            f"no {what} of {type(model).__name__} matches {pats}; some module names: {sample}",
            key=",".join(pats),
        )
    return found


@dataclass
class AdaptState:
    """What adaptation did to a model, kept on the root module as ``model._semiasr_adapt``.

    ``config``:    the AdaptConfig (as a plain dict) that ``prepare_adaptation`` applied, or None.
    ``prefixes``:  names of the modules that adaptation added at the root (``adapters`` …).
    ``attached``:  module name -> the adaptation modules that change that module's output.
    ``router``:    the per-domain routing state when the model has per-domain modules.
    """

    config: dict | None = None
    prefixes: list[str] = field(default_factory=list)
    attached: dict[str, list[nn.Module]] = field(default_factory=dict)
    router: object | None = None

    def attach(self, module_name: str, module: nn.Module) -> None:
        self.attached.setdefault(module_name, []).append(module)

    def modules_inside(self, prefix: str) -> list[nn.Module]:
        """Adaptation modules attached to ``prefix`` or to modules below it."""
        return [
            m
            for name, mods in self.attached.items()
            if not prefix or name == prefix or name.startswith(prefix + ".")
            for m in mods
        ]


def adapt_state(model: nn.Module) -> AdaptState:
    """The model's AdaptState, created empty on first use."""
    state = model.__dict__.get("_semiasr_adapt")
    if state is None:
        state = AdaptState()
        object.__setattr__(model, "_semiasr_adapt", state)
    return state


def root_container(model: nn.Module, name: str) -> nn.ModuleDict:
    """The ``nn.ModuleDict`` named ``name`` at the root of ``model`` (created on first use), where
    adaptation keeps the modules it adds, so that the base model's parameter names stay as they
    are."""
    existing = model._modules.get(name)
    if existing is not None:
        if name not in adapt_state(model).prefixes:
            raise ConfigError(
                f"{type(model).__name__} already has a submodule {name!r} of its own; "
                "adaptation needs that name for the modules it adds",
                key=name,
            )
        assert isinstance(existing, nn.ModuleDict)
        return existing
    if isinstance(model, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        raise ConfigError(
            f"cannot add {name!r} to a {type(model).__name__}: its forward would run it; "
            "wrap the model in an nn.Module first",
            key=name,
        )
    container = nn.ModuleDict()
    model.add_module(name, container)
    adapt_state(model).prefixes.append(name)
    return container
