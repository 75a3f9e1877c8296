"""Dotted-name globs over module and parameter names.

A pattern is matched segment by segment on the dots of a name: ``*``, ``?`` and ``[...]`` match
inside one segment (fnmatch), ``**`` matches any number of whole segments (also none). So
``encoder.layers.*`` picks ``encoder.layers.0`` but not ``encoder.layers.0.ff1``, and
``encoder.**.ff2`` picks every ``ff2`` under ``encoder``. A *parameter* matches a pattern when
the pattern matches its full name or one of its prefixes (the modules it sits in): ``predictor``
and ``predictor.*`` both select every parameter of the predictor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

__all__ = ["glob_match", "name_matches_any"]


def _match_segments(parts: Sequence[str], pats: Sequence[str]) -> bool:
    if not pats:
        return not parts
    head, rest = pats[0], pats[1:]
    if head == "**":
        return any(_match_segments(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match_segments(parts[1:], rest)


def glob_match(name: str, pattern: str) -> bool:
    """True when the dotted ``name`` matches the dotted glob ``pattern`` (see module docstring)."""
    parts = name.split(".") if name else []
    pats = pattern.split(".") if pattern else []
    return _match_segments(parts, pats)


def name_matches_any(name: str, patterns: Iterable[str]) -> bool:
    """True when ``name`` or one of its dotted prefixes matches one of ``patterns``."""
    parts = name.split(".")
    prefixes = [".".join(parts[: i + 1]) for i in range(len(parts))]
    return any(glob_match(p, pat) for pat in patterns for p in prefixes)
