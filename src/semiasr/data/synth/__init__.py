"""semiasr's built-in two-domain speech corpus, synthesised with eSpeak NG (``semiasr data synth``).

Source domain: voice-search queries and dictation, mostly clean. Target domain: device commands,
digit strings and addresses, mostly noisy, reverberant or telephone-band. See docs/corpus.md.
"""

from __future__ import annotations

from semiasr.data.synth.corpus import (
    FORMAT_VERSION,
    CorpusCard,
    ensure_corpus,
    is_complete,
    iter_manifest,
    synthesize_corpus,
)
from semiasr.data.synth.plan import SPLITS, UtteranceSpec, plan_corpus
from semiasr.data.synth.text import GENERATORS, generate_text, normalize_text

__all__ = [
    "FORMAT_VERSION",
    "GENERATORS",
    "SPLITS",
    "CorpusCard",
    "UtteranceSpec",
    "ensure_corpus",
    "generate_text",
    "is_complete",
    "iter_manifest",
    "normalize_text",
    "plan_corpus",
    "synthesize_corpus",
]
