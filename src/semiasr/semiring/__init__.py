"""Semiring lattices for speech recognition: semirings in log space and the CTC and RNN-T lattices
written once, generic over the semiring. The public functions live in ``semiasr.functional``."""

from __future__ import annotations

from semiasr.semiring.ctc import ctc_extended_labels, ctc_feasible, ctc_lattice
from semiasr.semiring.fast import use_backend
from semiasr.semiring.rnnt import rnnt_lattice
from semiasr.semiring.semirings import (
    ENTROPY,
    KL,
    LOG,
    MAX,
    EntropySemiring,
    KLSemiring,
    LogSemiring,
    MaxSemiring,
    Semiring,
    entropy_from_total,
    kl_from_total,
    neg_inf,
)

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
    "ctc_extended_labels",
    "ctc_feasible",
    "ctc_lattice",
    "entropy_from_total",
    "kl_from_total",
    "neg_inf",
    "rnnt_lattice",
    "use_backend",
]
