"""What every search returns: token ids, the encoder frame of each token, and the hypothesis'
log-score."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Decoded"]


@dataclass
class Decoded:
    """One entry per utterance.

    tokens: token ids (no blanks).
    times:  for each token, the encoder frame (0-based, after subsampling) at which it was emitted.
    scores: the search's log-score of the returned hypothesis (each search's docstring says which).
    """

    tokens: list[list[int]] = field(default_factory=list)
    times: list[list[int]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
