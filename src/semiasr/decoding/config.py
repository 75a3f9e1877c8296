"""How a run's model is decoded when a task scores it (``semiasr demo``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DecodeConfig:
    """``method``: "greedy" or "beam" (of width ``beam``). Beam search can fuse an n-gram LM of the
    run's training transcripts (:mod:`semiasr.lm`): ``lm_weight`` > 0 turns it on, ``token_bonus``
    is added per emitted token, ``lm_order`` is the n-gram order. Greedy search ignores the LM."""

    method: str = "greedy"  # "greedy" | "beam"
    beam: int = 4
    lm_weight: float = 0.0
    token_bonus: float = 0.0
    lm_order: int = 6

    @property
    def fused(self) -> bool:
        return self.method == "beam" and (self.lm_weight != 0.0 or self.token_bonus != 0.0)

    def describe(self) -> str:
        if self.method != "beam":
            return self.method
        lm = (
            f" + {self.lm_order}-gram LM (weight {self.lm_weight:g}, bonus {self.token_bonus:g})"
            if self.fused
            else ""
        )
        return f"beam {self.beam}{lm}"
