"""Shallow fusion: how a beam search adds a language model's opinion to a hypothesis' score.

Each token ``c`` a hypothesis emits after tokens ``h`` adds ``weight · log P_LM(c | h) + token_bonus``;
a finished hypothesis adds ``weight · log P_LM(end | h)``. The bonus (a reward per emitted token)
counters the LM's pull towards short outputs. Both searches (:func:`transducer_beam_search`,
:func:`ctc_prefix_beam_search`) take a :class:`ShallowFusion` as ``fusion=``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from semiasr.lm.ngram import NgramLM

__all__ = ["ShallowFusion"]


@dataclass(frozen=True)
class ShallowFusion:
    """An LM (ids as the acoustic model's; id 0, the blank, is the LM's end of sentence), its
    weight and a per-token bonus. Frozen: its per-context scores are cached (bounded)."""

    lm: NgramLM
    weight: float = 0.3
    token_bonus: float = 0.0
    _cache: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict, repr=False)

    def token_scores(self, history: Sequence[int]) -> np.ndarray:
        """(vocab_size,) what emitting each token after ``history`` adds; 0 at index 0 (blank)."""
        ctx = self.lm.context(history)
        hit = self._cache.get(ctx)
        if hit is None:
            if len(self._cache) >= self.lm._cache_limit:
                self._cache.clear()
            hit = self.weight * self.lm.log_probs(ctx) + self.token_bonus
            hit[0] = 0.0
            hit.setflags(write=False)
            self._cache[ctx] = hit
        return hit

    def end_score(self, history: Sequence[int]) -> float:
        """What finishing the sentence after ``history`` adds."""
        return self.weight * float(self.lm.log_probs(history)[0])

    def check(self, vocab_size: int, blank: int) -> None:
        """Refuse a search this fusion cannot serve: another vocabulary, or a blank other than 0
        (the LM's end of sentence)."""
        if blank != 0:
            raise ValueError(
                f"shallow fusion needs the blank at id 0 (the LM's boundary), got {blank}"
            )
        self.check_vocab(vocab_size)

    def check_vocab(self, vocab_size: int) -> None:
        if self.lm.vocab_size != vocab_size:
            raise ValueError(
                f"the LM has {self.lm.vocab_size} ids but the model outputs {vocab_size}: "
                "an LM must be built with the model's tokenizer"
            )
