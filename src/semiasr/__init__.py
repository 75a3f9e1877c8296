"""semiasr: semiring lattices, Conformer transducers and cheap domain adaptation for speech recognition.

The layers, bottom up (each imports only from those before it): ``semiring`` → ``functional`` → ``data``
→ ``nn`` → ``models`` → ``objectives`` → ``optim`` → ``decoding`` → ``train`` → ``eval`` → ``config`` →
``cli``. See ``docs/architecture.md``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
