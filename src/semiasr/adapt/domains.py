"""Modular domain adaptation (MDA): per-domain adapters and per-domain copies of modules, routed by
each utterance's domain id (Li et al., "Modular Domain Adaptation for Conformer-Based Streaming
ASR", 2023).

Domain 0 is the source domain and runs the base model unchanged. Each target domain d = 1 … N−1 gets

* its own copy of each routed module (e.g. the Conformer feed-forward modules ff1, ff2), initialised
  from the source module: FFN_d(x), kept in ``model.domain_modules[<target>][str(d)]``;
* its own residual adapter after each chosen position: x + Adapter_d(x), kept in
  ``model.adapters[<target>][str(d)]``.

For a batch with domain ids g (B,), row b of a routed module's output is module_{g_b}(x_b). Rows of
one domain are gathered, run through that domain's module and scattered back (index_copy), so a
parameter of domain d receives gradient only from rows with g_b = d: it is None when the batch has
no such row. Source rows always take the base path on the full batch, so the source domain's
outputs stay bit-identical to the base model's however the target modules are trained.

The domain ids reach the routed modules through ``domain_context(model, domains)``; calling the
model itself with a ``Batch`` (anything with a ``domains`` tensor) sets them for that call.
"""

from __future__ import annotations

import copy
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from semiasr.adapt.adapters import ResidualAdapter, adapter_targets, infer_width, place_like
from semiasr.adapt.names import adapt_state, key_of, matching_modules, root_container
from semiasr.adapt.outputs import main_tensor, replace_main_tensor
from semiasr.errors import ConfigError, DataError, SemiasrError

__all__ = [
    "DomainAdapters",
    "DomainRoutedObjective",
    "DomainRouter",
    "RoutedForward",
    "add_domain_adapters",
    "add_domain_modules",
    "domain_context",
    "route_rows",
]


class DomainRouter:
    """The domain ids of the forward pass in progress, shared by every routed module of a model.

    A stack: ``domain_context`` pushes ids, a root call with a Batch pushes the Batch's ids, a root
    call without one pushes None (the enclosing ids stay in force)."""

    def __init__(self, num_domains: int):
        self.num_domains = num_domains
        self._stack: list[Tensor | int | None] = []

    def check(self, domains: Tensor | int) -> Tensor | int:
        if isinstance(domains, Tensor):
            if domains.dim() != 1:
                raise DataError(f"domain ids must have shape (B,), got {tuple(domains.shape)}")
            bad = domains[(domains < 0) | (domains >= self.num_domains)]
            if bad.numel():
                raise DataError(
                    f"domain id {int(bad[0])} out of range: "
                    f"the model has {self.num_domains} domains"
                )
            return domains
        if not 0 <= int(domains) < self.num_domains:
            raise DataError(f"domain id {domains} out of range 0…{self.num_domains - 1}")
        return int(domains)

    def push(self, domains: Tensor | int | None) -> None:
        self._stack.append(None if domains is None else self.check(domains))

    def pop(self) -> None:
        self._stack.pop()

    def current(self, batch_size: int) -> Tensor | int:
        """The domain ids for a batch of ``batch_size`` rows: a (B,) tensor or one int for all."""
        domains = next((d for d in reversed(self._stack) if d is not None), None)
        if domains is None:
            raise SemiasrError(
                "this model has per-domain modules but no domain ids were given: call it with a "
                "Batch, or inside `with domain_context(model, domains):`"
            )
        if isinstance(domains, Tensor) and domains.shape[0] != batch_size:
            raise DataError(f"{domains.shape[0]} domain ids for a batch of {batch_size} rows")
        return domains

    def capture(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """Forward pre-hook of the root: take the ids from a ``Batch`` argument if there is one."""
        found = [
            a.domains
            for a in (*args, *kwargs.values())
            if isinstance(getattr(a, "domains", None), Tensor)
        ]
        try:
            checked = self.check(found[0]) if found else None
        except Exception:
            self._stack.append(None)  # release, called on errors too, pops it
            raise
        self._stack.append(checked)

    def release(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        """Forward hook of the root (always called, also on errors): undo ``capture``."""
        self.pop()


def _router(model: nn.Module, num_domains: int) -> DomainRouter:
    state = adapt_state(model)
    if state.router is None:
        state.router = DomainRouter(num_domains)
        model.register_forward_pre_hook(state.router.capture, with_kwargs=True)
        model.register_forward_hook(state.router.release, with_kwargs=True, always_call=True)
    router = state.router
    assert isinstance(router, DomainRouter)
    if router.num_domains != num_domains:
        raise ConfigError(
            f"the model is already routed over {router.num_domains} domains, not {num_domains}",
            key="num_domains",
        )
    return router


@contextmanager
def domain_context(model: nn.Module, domains: Tensor | int) -> Iterator[None]:
    """Route every forward pass inside the block by ``domains``: a (B,) tensor of ids, or one id for
    all rows."""
    router = adapt_state(model).router
    if not isinstance(router, DomainRouter):
        raise ConfigError(f"{type(model).__name__} has no per-domain modules to route")
    router.push(domains)
    try:
        yield
    finally:
        router.pop()


class DomainRoutedObjective:
    """Wrap an objective ``(model, batch) -> (loss, metrics)`` so that it runs inside
    ``domain_context(model, batch.domains)``: the way to train an MDA model with objectives that
    call the model with tensors rather than with the Batch."""

    def __init__(self, objective: Callable[[nn.Module, Any], Any]):
        self.objective = objective

    def __call__(self, model: nn.Module, batch: Any) -> Any:
        inner = getattr(model, "module", model)  # DistributedDataParallel keeps the model inside
        with domain_context(inner, batch.domains):
            return self.objective(model, batch)


def route_rows(
    domains: Tensor | int,
    paths: dict[int, Callable[..., Tensor]],
    x: Tensor,
    *args: Any,
    **kwargs: Any,
) -> Tensor:
    """Row b of the result is paths[domains[b]](x[b], …). Path 0, when present, runs on the whole
    batch (so its rows are exactly what the base model computes); every other path runs on its own
    rows only. ``paths`` may lack a domain whose rows should stay ``x`` (identity). ``args`` and
    ``kwargs`` go to every path; a tensor among them whose first dimension is the batch's (a padding
    or attention mask) is cut to the path's rows like ``x``."""

    def run(d: int, rows: Tensor | None) -> Tensor:
        if rows is None:
            return paths[d](x, *args, **kwargs)
        batch = x.shape[0]

        def cut(a: Any) -> Any:
            return a.index_select(0, rows) if _per_row(a, batch) else a

        a_d = [cut(a) for a in args]
        return paths[d](x.index_select(0, rows), *a_d, **{k: cut(v) for k, v in kwargs.items()})

    if isinstance(domains, int):
        return run(domains, None) if domains in paths else x
    present = [int(d) for d in torch.unique(domains).tolist()]
    if len(present) == 1:
        return run(present[0], None) if present[0] in paths else x
    out = run(0, None) if 0 in paths else x
    for d in present:
        if d == 0 and 0 in paths:
            continue
        rows = torch.nonzero(domains == d).squeeze(1)
        out = out.index_copy(0, rows, run(d, rows) if d in paths else x.index_select(0, rows))
    return out


def _per_row(a: Any, batch: int) -> bool:
    """A tensor argument with one entry per row of the batch (its first dimension is the batch's;
    a batch-independent tensor, like relative positional encodings, has first dimension 1)."""
    return isinstance(a, Tensor) and a.dim() > 0 and a.shape[0] == batch


class RoutedForward:
    """The replacement ``forward`` of a routed module: source rows through the module's own forward,
    rows of domain d through ``copies[str(d)]``. The module's first argument is the (B, T, D) input;
    tensor arguments with a first dimension of B (masks) are cut to each domain's rows, the others
    go to every domain as they are."""

    def __init__(self, base: Callable, copies: nn.ModuleDict, router: DomainRouter):
        self.base = base
        self.copies = copies
        self.router = router

    def __call__(self, x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        domains = self.router.current(x.shape[0])
        paths: dict[int, Callable[..., Tensor]] = {0: self.base}
        paths.update((int(key), module) for key, module in self.copies.items())
        return route_rows(domains, paths, x, *args, **kwargs)


def _has_adaptation(model: nn.Module, name: str) -> bool:
    attached = adapt_state(model).attached
    return any(n == name or n.startswith(name + ".") for n in attached)


def add_domain_modules(
    model: nn.Module, targets: str | Sequence[str], num_domains: int
) -> dict[str, nn.ModuleDict]:
    """Give each target domain 1 … num_domains−1 its own copy of every module matching ``targets``
    (dotted globs, e.g. ``encoder.layers.*.ff1``). Copies start equal to the source module. Call it
    before adding adapters or LoRA to those modules. Returns {target name: copies}."""
    if num_domains < 2:
        raise ConfigError(f"MDA needs ≥ 2 domains, got {num_domains}", key="num_domains")
    router = _router(model, num_domains)
    store = root_container(model, "domain_modules")
    added: dict[str, nn.ModuleDict] = {}
    for name, module in matching_modules(model, targets, what="module to route"):
        if key_of(name) in store:
            raise ConfigError(f"{name} is already routed per domain", key=name)
        if _has_adaptation(model, name):
            raise ConfigError(f"{name} already carries adaptation; route it per domain first")
        copies = nn.ModuleDict({str(d): copy.deepcopy(module) for d in range(1, num_domains)})
        store[key_of(name)] = copies
        base = types.MethodType(type(module).forward, module)
        module.forward = RoutedForward(base, copies, router)
        adapt_state(model).attach(name, copies)
        added[name] = copies
    return added


class DomainAdapters(nn.Module):
    """One ResidualAdapter per target domain; source rows pass unchanged."""

    def __init__(self, d_model: int, bottleneck: int, num_domains: int, act: str, dropout: float):
        super().__init__()
        self.per_domain = nn.ModuleDict(
            {
                str(d): ResidualAdapter(d_model, bottleneck, act, dropout)
                for d in range(1, num_domains)
            }
        )
        self.router: DomainRouter | None = None

    def forward(self, x: Tensor) -> Tensor:
        assert self.router is not None
        paths = {int(k): a for k, a in self.per_domain.items()}
        return route_rows(self.router.current(x.shape[0]), paths, x)

    def on_output(self, module: nn.Module, args: Any, output: Any) -> Any:
        return replace_main_tensor(output, self(main_tensor(output)))


def add_domain_adapters(
    model: nn.Module,
    layers: str,
    positions: Sequence[str],
    bottleneck: int,
    num_domains: int,
    *,
    act: str = "relu",
    dropout: float = 0.0,
) -> dict[str, DomainAdapters]:
    """Per-domain residual adapters after ``positions`` of each block matching ``layers``: domain d
    ≥ 1 adds its own adapter, domain 0 none. Returns {target name: DomainAdapters}."""
    router = _router(model, num_domains)
    store = root_container(model, "adapters")
    added: dict[str, DomainAdapters] = {}
    for name, module in matching_modules(model, adapter_targets(layers, positions), what="block"):
        if key_of(name) in store:
            raise ConfigError(f"{name} already has an adapter", key=name)
        adapters = DomainAdapters(infer_width(module), bottleneck, num_domains, act, dropout)
        adapters.router = router
        place_like(adapters, module)
        store[key_of(name)] = adapters
        module.register_forward_hook(adapters.on_output)
        adapt_state(model).attach(name, adapters)
        added[name] = adapters
    return added
