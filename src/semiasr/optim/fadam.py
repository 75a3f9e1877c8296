"""FAdam: Adam read as natural-gradient descent with a diagonal empirical Fisher.

Hwang, "FAdam: Adam is a natural gradient optimizer using diagonal empirical Fisher
information", 2024.

For every parameter tensor θ (any shape, ``n`` elements) with gradient g at step t = 1, 2, ...::

    β̂₂  = β₂ (1 − β₂^{t−1}) / (1 − β₂^t)          # so that f equals Adam's bias-corrected v̂
    f   ← β̂₂ f + (1 − β̂₂) g²                       # diagonal empirical Fisher, same shape as θ
    ε_t = ε · min(RMS(g), 1)                        # adaptive epsilon, one number per tensor
    ḡ   = g / (f^p + ε_t)                           # natural gradient
    ḡ   ← ḡ / max(1, RMS(ḡ) / c)                    # per-tensor RMS clipping
    m   ← β₁ m + (1 − β₁) ḡ                         # momentum on ḡ, no bias correction
    w   = θ / (f^p + ε_t)                           # Fisher-preconditioned weight decay
    w   ← w / max(1, RMS(w) / c)
    θ   ← θ − η (m + λ w)

with RMS(x) = ‖x‖₂ / √n. The state per tensor is ``fisher`` (f), ``momentum`` (m), both shaped
like θ, and ``step`` (t, an int).

One guard the paper leaves implicit: ε_t is floored at 1e-16 (at the dtype's smallest normal
number where that is larger), so a tensor whose gradient is exactly zero while its Fisher is
still zero (f = 0, ε_t = 0) gets ḡ = 0 instead of 0/0. Its weight-decay term θ/1e-16 is then
clipped to RMS c, or dropped for that step where ‖w‖ overflows (factor 0). In normal training
ε_t ≫ 1e-16 and the floor changes nothing.

Two code paths compute the same update: ``foreach=True`` (the default) groups tensors by
device and dtype and uses ``torch._foreach_*`` kernels, with per-tensor RMS from
``torch._foreach_norm``; ``foreach=False`` loops over tensors. FAdam is a plain
:class:`torch.optim.Optimizer`: parameter groups, ``state_dict``/``load_state_dict`` (exact
resume), DDP and ``torch.amp.GradScaler`` (``scaler.step`` unscales the gradients and skips
the step on inf/NaN) work as for Adam.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from semiasr.errors import ConfigError

__all__ = ["FAdam"]

_EPS_FLOOR = 1e-16
_CPU_CHUNK_NUMEL = 1 << 20


class FAdam(Optimizer):
    """Fisher Adam. ``betas`` = (β₁, β₂), ``clip`` = c (``math.inf`` disables clipping),
    ``p`` = the Fisher exponent (0.5 as in Adam), ``weight_decay`` = λ. See the module
    docstring for the update."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.1,
        clip: float = 1.0,
        p: float = 0.5,
        *,
        foreach: bool | None = None,
    ) -> None:
        _check_hyperparameters(lr, betas, eps, weight_decay, clip, p)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            clip=clip,
            p=p,
            foreach=foreach,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            _check_hyperparameters(
                group["lr"],
                group["betas"],
                group["eps"],
                group["weight_decay"],
                group["clip"],
                group["p"],
            )

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, fishers, moms, steps = self._collect(group)
            if not params:
                continue
            foreach = group["foreach"] is None or group["foreach"]
            update = _update_foreach if foreach else _update_per_tensor
            update(params, grads, fishers, moms, steps, group)
        return loss

    def _collect(
        self, group: dict[str, Any]
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor], list[int]]:
        """Parameters of ``group`` with a gradient, their state (created lazily), new steps t."""
        params, grads, fishers, moms, steps = [], [], [], [], []
        for param in group["params"]:
            if param.grad is None or param.numel() == 0:
                continue
            if param.grad.is_sparse:
                raise ConfigError(
                    "FAdam does not support sparse gradients (parameter of shape "
                    f"{tuple(param.shape)}); use a dense embedding"
                )
            if torch.is_complex(param):
                raise ConfigError(
                    f"FAdam does not support complex parameters (shape {tuple(param.shape)})"
                )
            state = self.state[param]
            if not state:
                state["step"] = 0
                state["fisher"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["momentum"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["step"] += 1
            params.append(param)
            grads.append(param.grad)
            fishers.append(state["fisher"])
            moms.append(state["momentum"])
            steps.append(state["step"])
        return params, grads, fishers, moms, steps


def _check_hyperparameters(
    lr: float, betas: tuple[float, float], eps: float, weight_decay: float, clip: float, p: float
) -> None:
    checks = [
        ("lr", lr, lr >= 0, ">= 0"),
        ("betas[0]", betas[0], 0.0 <= betas[0] < 1.0, "in [0, 1)"),
        ("betas[1]", betas[1], 0.0 <= betas[1] < 1.0, "in [0, 1)"),
        ("eps", eps, eps >= 0, ">= 0"),
        ("weight_decay", weight_decay, weight_decay >= 0, ">= 0"),
        ("clip", clip, clip > 0, "> 0 (math.inf disables clipping)"),
        ("p", p, p > 0, "> 0"),
    ]
    for name, value, ok, want in checks:
        if not ok:
            raise ConfigError(f"FAdam: {name} must be {want}, got {value!r}", key=f"optim.{name}")
    if len(betas) != 2:
        raise ConfigError(f"FAdam: betas must be a pair (beta1, beta2), got {betas!r}")


def fisher_decay(beta2: float, step: int) -> float:
    """β̂₂ = β₂(1 − β₂^{t−1})/(1 − β₂^t), which makes f equal Adam's bias-corrected v̂."""
    return beta2 * (1.0 - beta2 ** (step - 1)) / (1.0 - beta2**step)


def _eps_floor(dtype: torch.dtype) -> float:
    return max(_EPS_FLOOR, torch.finfo(dtype).tiny)


def _scalar_dtype(dtype: torch.dtype) -> torch.dtype:
    """Per-tensor scalars (norms, ε_t, clip factors) of half-precision tensors are float32."""
    return torch.float32 if torch.finfo(dtype).bits < 32 else dtype


def _clip_factor(norm: Tensor, sqrt_n: float | Tensor, clip: float) -> Tensor:
    """1 / max(1, RMS/c) = min(1, c √n / ‖x‖₂); 1 when ‖x‖ = 0, 0 when ‖x‖ overflows to inf."""
    return (clip * sqrt_n / norm).clamp(max=1.0)


# ---------------------------------------------------------------- per-tensor path


def _update_per_tensor(
    params: list[Tensor],
    grads: list[Tensor],
    fishers: list[Tensor],
    moms: list[Tensor],
    steps: list[int],
    group: dict[str, Any],
) -> None:
    beta1, beta2 = group["betas"]
    lr, eps, wd, clip, p = (group[k] for k in ("lr", "eps", "weight_decay", "clip", "p"))
    for theta, g, f, m, t in zip(params, grads, fishers, moms, steps):
        b2 = fisher_decay(beta2, t)
        f.mul_(b2).addcmul_(g, g, value=1.0 - b2)
        sqrt_n = math.sqrt(g.numel())
        sdt = _scalar_dtype(g.dtype)
        rms_g = torch.linalg.vector_norm(g, dtype=sdt) / sqrt_n
        eps_t = (eps * rms_g.clamp(max=1.0)).clamp(min=_eps_floor(g.dtype))
        inv = (f.sqrt() if p == 0.5 else f.pow(p)).add_(eps_t).reciprocal_()  # 1 / (f^p + ε_t)
        nat = g * inv
        nat.mul_(_clip_factor(torch.linalg.vector_norm(nat, dtype=sdt), sqrt_n, clip))
        m.mul_(beta1).add_(nat, alpha=1.0 - beta1)
        if wd != 0:
            w = inv.mul_(theta)
            w.mul_(_clip_factor(torch.linalg.vector_norm(w, dtype=sdt), sqrt_n, clip))
            theta.add_(w, alpha=-lr * wd)
        theta.add_(m, alpha=-lr)


# ---------------------------------------------------------------- multi-tensor (foreach) path


def _update_foreach(
    params: list[Tensor],
    grads: list[Tensor],
    fishers: list[Tensor],
    moms: list[Tensor],
    steps: list[int],
    group: dict[str, Any],
) -> None:
    buckets: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, theta in enumerate(params):
        buckets.setdefault((theta.device, theta.dtype), []).append(i)
    for (device, _), idx in buckets.items():
        for chunk in _chunks(idx, [params[i].numel() for i in idx], _chunk_numel(device)):
            lists = ([xs[i] for i in chunk] for xs in (params, grads, fishers, moms, steps))
            _update_bucket(*lists, group)


def _chunk_numel(device: torch.device) -> float:
    """Elements per multi-tensor call: unbounded on accelerators (fewer kernel launches); on CPU,
    about 1M, so that a call's tensors and temporaries stay in cache and its temporaries are
    reused by the allocator instead of being mapped afresh each step."""
    return _CPU_CHUNK_NUMEL if device.type == "cpu" else math.inf


def _chunks(idx: list[int], sizes: list[int], budget: float) -> list[list[int]]:
    """Consecutive runs of ``idx`` whose sizes sum to at most ``budget`` (a larger tensor alone)."""
    out: list[list[int]] = []
    total = 0
    for i, n in zip(idx, sizes):
        if not out or total + n > budget:
            out.append([])
            total = 0
        out[-1].append(i)
        total += n
    return out


def _update_bucket(
    params: list[Tensor],
    grads: list[Tensor],
    fishers: list[Tensor],
    moms: list[Tensor],
    steps: list[int],
    group: dict[str, Any],
) -> None:
    """The update on N tensors of one device and dtype; per-tensor scalars are 1-D, length N."""
    beta1, beta2 = group["betas"]
    lr, eps, wd, clip, p = (group[k] for k in ("lr", "eps", "weight_decay", "clip", "p"))
    device, sdt = params[0].device, _scalar_dtype(params[0].dtype)

    # f ← β̂₂ f + (1 − β̂₂) g²   (β̂₂ differs per tensor only when their step counts differ)
    b2 = [fisher_decay(beta2, t) for t in steps]
    torch._foreach_mul_(fishers, b2)
    torch._foreach_addcmul_(fishers, grads, grads, [1.0 - b for b in b2])

    # ε_t = max(ε · min(RMS(g), 1), floor), one per tensor
    sqrt_n = torch.tensor([math.sqrt(g.numel()) for g in grads], dtype=sdt, device=device)
    rms_g = _norms(grads, sdt) / sqrt_n
    eps_t = (eps * rms_g.clamp(max=1.0)).clamp(min=_eps_floor(params[0].dtype))

    # ḡ = g / (f^p + ε_t), clipped to RMS ≤ c. Two temporaries per tensor: inv = 1/(f^p + ε_t)
    # and ḡ; the weight-decay term reuses inv's memory.
    inv = torch._foreach_sqrt(fishers) if p == 0.5 else torch._foreach_pow(fishers, p)
    torch._foreach_add_(inv, list(eps_t.unbind()))
    torch._foreach_reciprocal_(inv)
    nat = torch._foreach_mul(grads, inv)
    torch._foreach_mul_(nat, list(_clip_factor(_norms(nat, sdt), sqrt_n, clip).unbind()))

    # m ← β₁ m + (1 − β₁) ḡ
    torch._foreach_lerp_(moms, nat, 1.0 - beta1)

    # θ ← θ − η λ clip(θ / (f^p + ε_t)) − η m
    if wd != 0:
        torch._foreach_mul_(inv, params)
        w = inv
        w_scale = _clip_factor(_norms(w, sdt), sqrt_n, clip) * (-lr * wd)
        torch._foreach_mul_(w, list(w_scale.unbind()))
        torch._foreach_add_(params, w)
    torch._foreach_add_(params, moms, alpha=-lr)


def _norms(tensors: list[Tensor], dtype: torch.dtype) -> Tensor:
    """‖x‖₂ of every tensor, as one 1-D tensor of length N."""
    return torch.stack(torch._foreach_norm(tensors, dtype=dtype))
