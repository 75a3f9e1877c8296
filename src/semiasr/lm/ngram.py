"""Token n-gram language model with interpolated Kneser–Ney smoothing, for shallow fusion.

The model works on tokenizer ids. Id 0 (the blank, which text never contains) doubles as the
sentence boundary: contexts at the start of a sentence are padded with 0, and ``P(0 | h)`` is the
probability that the sentence ends after ``h``. So a distribution over the tokenizer's ids is a
distribution over "next token or end of sentence", and ``log_probs(h)`` is a vector of
``vocab_size`` log-probabilities that sums to one.

Smoothing (Chen & Goodman, 1998, interpolated Kneser–Ney with one discount per order)::

    P_n(w | h) = max(c_n(h w) − D_n, 0) / c_n(h) + D_n · N1+(h •) / c_n(h) · P_{n−1}(w | h')

where ``h'`` drops the oldest token of ``h``, ``c_n`` is the count for the highest order and the
continuation count ``N1+(• h w)`` (number of distinct tokens seen before ``h w``) for lower orders,
``N1+(h •)`` is the number of distinct tokens seen after ``h``, and ``D_n = n1 / (n1 + 2 n2)`` from
the order's count-of-counts. Below the unigram sits the uniform distribution over every id, so
each id has non-zero probability. A context never seen backs off whole.

Saved as JSON (no code runs on load): ``NgramLM.save`` / ``NgramLM.load``.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semiasr.errors import ConfigError

__all__ = ["NgramLM"]

FORMAT = 1


class NgramLM:
    """An order-``order`` token LM over ids ``0 … vocab_size − 1`` (0: sentence boundary).

    ``counts[k]`` maps a context of ``k`` tokens (a tuple) to a ``{next id: count}`` dict: raw
    counts for ``k = order − 1``, continuation counts below. Build with :meth:`fit`."""

    def __init__(
        self,
        order: int,
        vocab_size: int,
        counts: list[dict[tuple[int, ...], dict[int, int]]],
        discounts: list[float],
    ) -> None:
        if order < 1:
            raise ConfigError(f"n-gram order must be >= 1, got {order}", key="order")
        if vocab_size < 2:
            raise ConfigError(f"vocab_size must be >= 2, got {vocab_size}", key="vocab_size")
        if len(counts) != order or len(discounts) != order:
            raise ValueError(f"need {order} count tables and discounts")
        self.order = order
        self.vocab_size = vocab_size
        self.counts = counts
        self.discounts = discounts
        self._cache: dict[tuple[int, ...], np.ndarray] = {}
        self._log_cache: dict[tuple[int, ...], np.ndarray] = {}
        # bounded: about 160 MB of float64 rows per cache at most, then it starts over
        self._cache_limit = max(1000, 20_000_000 // vocab_size)

    # ------------------------------------------------------------------ building

    @classmethod
    def fit(cls, sentences: Iterable[Sequence[int]], vocab_size: int, order: int = 6) -> NgramLM:
        """Count ``sentences`` (lists of ids in ``1 … vocab_size − 1``) into an n-gram LM."""
        if order < 1:
            raise ConfigError(f"n-gram order must be >= 1, got {order}", key="order")
        top: dict[tuple[int, ...], Counter] = defaultdict(Counter)
        n = 0
        for sent in sentences:
            ids = list(sent)
            bad = [x for x in ids if not 0 < x < vocab_size]
            if bad:
                raise ValueError(f"sentence {n}: ids {bad[:5]} outside 1 … {vocab_size - 1}")
            seq = [0] * (order - 1) + ids + [0]
            for i in range(order - 1, len(seq)):
                top[tuple(seq[i - order + 1 : i])][seq[i]] += 1
            n += 1
        if n == 0:
            raise ValueError("no sentences to fit the n-gram LM on")
        tables: list[dict[tuple[int, ...], Counter]] = [defaultdict(Counter) for _ in range(order)]
        tables[order - 1] = top
        # continuation counts: N1+(• h w) for the lower orders, from the order above
        for k in range(order - 1, 0, -1):
            for ctx, nxt in tables[k].items():
                for w in nxt:
                    tables[k - 1][ctx[1:]][w] += 1
        discounts = []
        for table in tables:
            coc = Counter(c for nxt in table.values() for c in nxt.values() if c <= 2)
            n1, n2 = coc.get(1, 0), coc.get(2, 0)
            discounts.append(n1 / (n1 + 2 * n2) if n1 > 0 else 0.5)
        counts = [{ctx: dict(nxt) for ctx, nxt in table.items()} for table in tables]
        return cls(order, vocab_size, counts, discounts)

    # ------------------------------------------------------------------ querying

    def context(self, history: Sequence[int]) -> tuple[int, ...]:
        """The ``order − 1`` tokens that condition the next one after ``history`` (padded)."""
        k = self.order - 1
        if k == 0:
            return ()
        tail = tuple(history[-k:])
        return (0,) * (k - len(tail)) + tail

    def probs(self, context: Sequence[int]) -> np.ndarray:
        """``P(· | context)`` as float64 (vocab_size,), ``context`` as :meth:`context` gives it;
        read-only (cached)."""
        ctx = tuple(context)
        hit = self._cache.get(ctx)
        if hit is not None:
            return hit
        if len(ctx) == 0:
            lower = np.full(self.vocab_size, 1.0 / self.vocab_size)
            lower.setflags(write=False)
        else:
            lower = self.probs(ctx[1:])
        k = len(ctx)
        nxt = self.counts[k].get(ctx)
        if not nxt:
            p = lower
        else:
            d = self.discounts[k]
            total = sum(nxt.values())
            p = lower * (d * len(nxt) / total)
            ids = np.fromiter(nxt.keys(), dtype=np.int64, count=len(nxt))
            cnt = np.fromiter(nxt.values(), dtype=np.float64, count=len(nxt))
            p[ids] += np.maximum(cnt - d, 0.0) / total
            p.setflags(write=False)  # cached and shared: callers must not edit it
        if len(self._cache) >= self._cache_limit:
            self._cache.clear()
        self._cache[ctx] = p
        return p

    def log_probs(self, history: Sequence[int]) -> np.ndarray:
        """``log P(next | history)`` (vocab_size,); index 0 is the end of the sentence."""
        ctx = self.context(history)
        hit = self._log_cache.get(ctx)
        if hit is None:
            if len(self._log_cache) >= self._cache_limit:
                self._log_cache.clear()
            hit = self._log_cache[ctx] = np.log(self.probs(ctx))
            hit.setflags(write=False)
        return hit

    def score(self, ids: Sequence[int]) -> float:
        """``log P(sentence)``, the end of the sentence included."""
        ids = list(ids)
        return float(
            sum(self.log_probs(ids[:i])[w] for i, w in enumerate(ids)) + self.log_probs(ids)[0]
        )

    def perplexity(self, sentences: Iterable[Sequence[int]]) -> float:
        """Per-token perplexity (end-of-sentence events counted as tokens)."""
        total, n = 0.0, 0
        for s in sentences:
            total += self.score(s)
            n += len(s) + 1
        return math.exp(-total / max(n, 1))

    # ------------------------------------------------------------------ files

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "kind": "ngram-kn",
            "order": self.order,
            "vocab_size": self.vocab_size,
            "discounts": self.discounts,
            "counts": [
                [[list(ctx), [[w, c] for w, c in nxt.items()]] for ctx, nxt in table.items()]
                for table in self.counts
            ],
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "n-gram LM") -> NgramLM:
        if not isinstance(d, dict) or d.get("kind") != "ngram-kn" or d.get("format") != FORMAT:
            kind, fmt = (d.get("kind"), d.get("format")) if isinstance(d, dict) else (None, None)
            raise ConfigError(
                f"{source}: not a semiasr n-gram LM of format {FORMAT} "
                f"(kind {kind!r}, format {fmt!r})"
            )
        try:
            counts = [
                {tuple(ctx): {int(w): int(c) for w, c in nxt} for ctx, nxt in table}
                for table in d["counts"]
            ]
            return cls(
                int(d["order"]), int(d["vocab_size"]), counts, [float(x) for x in d["discounts"]]
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"{source}: a damaged n-gram LM ({type(e).__name__}: {e})") from None

    def save(self, path: str | Path) -> None:
        from semiasr.rundir import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), separators=(",", ":")))

    @classmethod
    def load(cls, path: str | Path) -> NgramLM:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: cannot read the n-gram LM: {e}") from None
        return cls.from_dict(d, str(path))
