"""Semirings in log space: Log, Max (Viterbi), Entropy (expectation) and KL.

An element of a semiring with ``n`` components is a tensor of shape ``(n, *shape)``: component ``i`` of
every cell lives at ``x[i]``. Every component is a logarithm, so nothing underflows:

=========  ==========================================================  ==========  =====================
semiring   element                                                     ⊕           ⊗
=========  ==========================================================  ==========  =====================
Log        ⟨log p⟩                                                     logaddexp   +
Max        ⟨log p⟩                                                     max         +
Entropy    ⟨log p, log(−p log p)⟩                                      logaddexp   product rule (below)
KL         ⟨log p, log q, log(−q log q), log(−q log p)⟩                logaddexp   product rule (below)
=========  ==========================================================  ==========  =====================

The expectation semirings follow "Revisiting the Entropy Semiring for Neural Speech Recognition"
(Chang et al., ICLR 2023) and Li & Eisner (2009): ⟨p₁, r₁⟩ ⊗ ⟨p₂, r₂⟩ = ⟨p₁p₂, p₁r₂ + r₁p₂⟩, here
with every quantity stored as its logarithm (all of p, −p log p and −q log p are ≥ 0 when the arc weights
are log-probabilities, i.e. ≤ 0).

"−∞" is a finite number (``neg_inf(dtype)``, −1e30 in float32 and float64) so that no gradient is ever
NaN: logaddexp(−1e30, −1e30) is finite and so is its derivative.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "ENTROPY",
    "KL",
    "LOG",
    "MAX",
    "EntropySemiring",
    "KLSemiring",
    "LogSemiring",
    "MaxSemiring",
    "Semiring",
    "entropy_from_total",
    "kl_from_total",
    "neg_inf",
]


def neg_inf(dtype: torch.dtype) -> float:
    """The finite "−∞" used inside lattices: small enough to lose every logaddexp, far from overflow."""
    return -1e30 if torch.finfo(dtype).bits >= 32 else -1e4


def _tiny(dtype: torch.dtype) -> float:
    """How far below 0 an arc log-weight is clamped before log(−w) (keeps d/dw log(−w) finite)."""
    return 1e-6 if dtype == torch.float32 else 1e-12


def _log_neg(w: Tensor) -> Tensor:
    """log(−w) for log-weights w ≤ 0, with w clamped to ≤ −tiny."""
    return torch.log(-torch.clamp(w, max=-_tiny(w.dtype)))


def logaddexp(a: Tensor, b: Tensor) -> Tensor:
    """log(eᵃ + eᵇ) whose first and second derivatives stay finite at the finite −∞.

    (torch.logaddexp's backward forms exp(b − a), which overflows for a = −1e30 in double backward.)
    """
    return torch.logsumexp(torch.stack(torch.broadcast_tensors(a, b)), dim=0)


class Semiring:
    """A commutative semiring whose elements are ``n`` stacked log-space components."""

    n: int = 1
    n_mass: int = 1  # leading components that are log-masses (1̄ sets them to 0)

    def zero(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """0̄ (annihilator of ⊗, identity of ⊕) of the given shape."""
        return torch.full(
            (self.n, *shape), neg_inf(like.dtype), dtype=like.dtype, device=like.device
        )

    def one(self, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """1̄ (identity of ⊗): every log-mass 0, every expectation component log 0."""
        x = self.zero(shape, like)
        x[: self.n_mass] = 0.0
        return x

    def plus(self, a: Tensor, b: Tensor) -> Tensor:
        """a ⊕ b."""
        return logaddexp(a, b)

    def sum(self, x: Tensor, dim: int) -> Tensor:
        """⊕ over one dimension of the cells (``dim`` counts the component axis as 0)."""
        return torch.logsumexp(x, dim=dim)

    def times(self, a: Tensor, b: Tensor) -> Tensor:
        """a ⊗ b."""
        return a + b


class LogSemiring(Semiring):
    """⟨log p⟩ with ⊕ = logaddexp, ⊗ = +: the forward algorithm, i.e. log Z."""

    def lift(self, w: Tensor) -> Tensor:
        return w.unsqueeze(0)


class MaxSemiring(Semiring):
    """⟨log p⟩ with ⊕ = max, ⊗ = +: the Viterbi score. ``argsum`` also returns the back-pointer."""

    def plus(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.maximum(a, b)

    def sum(self, x: Tensor, dim: int) -> Tensor:
        return x.amax(dim=dim)

    def argsum(self, x: Tensor, dim: int) -> tuple[Tensor, Tensor]:
        """⊕ along ``dim`` and the index that won (the first one on ties)."""
        values, index = x.max(dim=dim)
        return values, index

    def lift(self, w: Tensor) -> Tensor:
        return w.unsqueeze(0)


class EntropySemiring(Semiring):
    """⟨a, b⟩ = ⟨log p, log(−p log p)⟩; ⟨a₁,b₁⟩⊗⟨a₂,b₂⟩ = ⟨a₁+a₂, logaddexp(a₁+b₂, b₁+a₂)⟩.

    Over a lattice the total ⟨A, B⟩ gives the entropy of the normalised path posterior,
    H = exp(B − A) + A (``entropy_from_total``).
    """

    n = 2

    def times(self, x: Tensor, y: Tensor) -> Tensor:
        a = x[0] + y[0]
        b = logaddexp(x[0] + y[1], x[1] + y[0])
        return torch.stack([a, b])

    def lift(self, w: Tensor) -> Tensor:
        """An arc of log-weight w ≤ 0 becomes ⟨w, log(−w) + w⟩."""
        return torch.stack([w, _log_neg(w) + w])


class KLSemiring(Semiring):
    """⟨log p, log q, log(−q log q), log(−q log p)⟩ for a student p and a teacher q on the same arcs.

    ⊗ adds the first two components and applies the product rule to the pairs (q, −q log q) and
    (q, −q log p) — note both expectations are taken under q. The total gives
    KL(q̄ ‖ p̄) = E_q̄[log q̄ − log p̄] (``kl_from_total``), where p̄, q̄ are the normalised posteriors.
    """

    n = 4
    n_mass = 2

    def times(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.stack(
            [
                x[0] + y[0],
                x[1] + y[1],
                logaddexp(x[1] + y[2], x[2] + y[1]),
                logaddexp(x[1] + y[3], x[3] + y[1]),
            ]
        )

    def lift(self, wp: Tensor, wq: Tensor) -> Tensor:
        """Student arc weight wp and teacher arc weight wq (both log-probs ≤ 0)."""
        return torch.stack([wp, wq, _log_neg(wq) + wq, _log_neg(wp) + wq])


def entropy_from_total(total: Tensor) -> Tensor:
    """H(p̄) = −Σ p̄ log p̄ = exp(B − A) + A from an Entropy-semiring total ⟨A, B⟩ of shape (2, ...)."""
    a, b = total[0], total[1]
    return torch.exp(b - a) + a


def kl_from_total(total: Tensor) -> Tensor:
    """KL(q̄ ‖ p̄) from a KL-semiring total ⟨log P, log Q, log(−Σq log q), log(−Σq log p)⟩.

    KL = Σq log q / Q − Σq log p / Q − log Q + log P = exp(D − Q) − exp(C − Q) − Q + P.
    """
    p, q, c, d = total[0], total[1], total[2], total[3]
    return torch.exp(d - q) - torch.exp(c - q) - q + p


LOG = LogSemiring()
MAX = MaxSemiring()
ENTROPY = EntropySemiring()
KL = KLSemiring()
