"""``python -m semiasr …`` is the ``semiasr`` command (handy under ``torchrun -m semiasr …``)."""

from __future__ import annotations

from semiasr.cli.app import _entry

if __name__ == "__main__":
    _entry()
