"""The ``semiasr`` command. Thin: parse, build the config, call a task. Sub-commands register here."""

from __future__ import annotations

from semiasr.cli.app import app, main

__all__ = ["app", "main"]
