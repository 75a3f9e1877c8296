"""Exceptions for what a user can get wrong. Each message says what is wrong and where."""

from __future__ import annotations


class SemiasrError(Exception):
    """Base class of every error that semiasr raises about user input."""


class ConfigError(SemiasrError, ValueError):
    """A config key that does not exist, a value of the wrong type, or an unreadable config file.

    ``key`` is the full dotted key, ``suggestion`` the closest valid key where one is close enough.
    """

    def __init__(self, message: str, *, key: str | None = None, suggestion: str | None = None):
        super().__init__(message)
        self.key = key
        self.suggestion = suggestion


class DataError(SemiasrError, ValueError):
    """Bad data: an unreadable, empty or truncated audio file, a missing file, a duplicate id, a sample
    rate that differs from the manifest's, text the tokenizer cannot encode. ``item`` names the utterance
    or file."""

    def __init__(self, message: str, *, item: str | None = None):
        super().__init__(message if item is None else f"{item}: {message}")
        self.item = item


class CheckpointError(SemiasrError, ValueError):
    """A checkpoint that cannot be read, or that does not fit the model it is loaded into."""


class AlignmentError(SemiasrError, ValueError):
    """An alignment that cannot exist, e.g. CTC with fewer frames than labels plus repeats."""


class RunDirError(SemiasrError, FileExistsError):
    """A run directory that exists already where neither resume nor overwrite was asked for."""
