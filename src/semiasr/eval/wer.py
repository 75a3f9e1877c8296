"""Word and character error rates with their alignments, through jiwer.

``score_utterance`` counts substitutions, deletions and insertions of one hypothesis against its reference;
``ErrorCounts`` add up, so per-domain and per-speaker rates are sums of counts (not means of rates).
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer

__all__ = ["ErrorCounts", "aligned_text", "error_counts", "wer"]


@dataclass
class ErrorCounts:
    """Edit operations against ``ref_len`` reference units (words or characters)."""

    sub: int = 0
    dels: int = 0
    ins: int = 0
    ref_len: int = 0

    @property
    def errors(self) -> int:
        return self.sub + self.dels + self.ins

    @property
    def rate(self) -> float:
        """Error rate in percent; an empty reference set with errors counts as 100 per error."""
        if self.ref_len == 0:
            return 100.0 * self.errors
        return 100.0 * self.errors / self.ref_len

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.sub + other.sub,
            self.dels + other.dels,
            self.ins + other.ins,
            self.ref_len + other.ref_len,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "rate": round(self.rate, 4),
            "sub": self.sub,
            "del": self.dels,
            "ins": self.ins,
            "ref": self.ref_len,
        }


def _units(text: str, unit: str) -> list[str]:
    text = " ".join(text.split())
    return text.split() if unit == "word" else list(text)


def error_counts(ref: str, hyp: str, unit: str = "word") -> ErrorCounts:
    """Edit counts of ``hyp`` against ``ref``; ``unit`` is "word" or "char" (spaces count as chars)."""
    if unit not in {"word", "char"}:
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    r, h = _units(ref, unit), _units(hyp, unit)
    if not r:
        return ErrorCounts(ins=len(h))
    if not h:
        return ErrorCounts(dels=len(r), ref_len=len(r))
    if unit == "word":
        out = jiwer.process_words(" ".join(r), " ".join(h))
    else:  # the characters of the space-normalised texts, spaces included (a merged word is 1)
        out = jiwer.process_characters("".join(r), "".join(h))
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, len(r))


def wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus word error rate in percent (total edits over total reference words)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    total = ErrorCounts()
    for r, h in zip(refs, hyps):
        total = total + error_counts(r, h)
    return total.rate


def aligned_text(ref: str, hyp: str) -> str:
    """Three lines, REF / HYP / operations (S, D, I), words aligned in columns."""
    r, h = ref.split(), hyp.split()
    if not r or not h:
        return f"REF: {ref or '*'}\nHYP: {hyp or '*'}\n"
    out = jiwer.process_words(" ".join(r), " ".join(h))
    rows: list[tuple[str, str, str]] = []
    for chunk in out.alignments[0]:
        rw = r[chunk.ref_start_idx : chunk.ref_end_idx]
        hw = h[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "equal" or chunk.type == "substitute":
            op = "" if chunk.type == "equal" else "S"
            rows += [(a, b, op) for a, b in zip(rw, hw)]
        elif chunk.type == "delete":
            rows += [(a, "*" * len(a), "D") for a in rw]
        else:
            rows += [("*" * len(b), b, "I") for b in hw]
    widths = [max(len(a), len(b), len(c)) for a, b, c in rows]
    line = lambda i: " ".join(row[i].ljust(w) for row, w in zip(rows, widths)).rstrip()  # noqa: E731
    return f"REF: {line(0)}\nHYP: {line(1)}\n     {line(2)}\n"
