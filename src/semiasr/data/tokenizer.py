"""Text normalisation and tokenizers: characters, SentencePiece BPE and unigram.

Ids: 0 is the blank (reserved for CTC/transducers, never produced by ``encode``); text symbols are
1 … V − 1 and ``vocab_size`` = V counts the blank. ``decode(encode(t)) == t`` for every text ``t``
that the normaliser returns (a lossless round trip). Text with a character the tokenizer was not
trained on raises :class:`~semiasr.errors.DataError` naming the utterance.

A tokenizer is saved with the model as a plain dict (``to_dict``) or JSON bytes (``to_bytes``),
never a pickle; the SentencePiece model travels inside as base64 of its protobuf. SentencePiece:
Kudo & Richardson, "SentencePiece: A simple and language independent subword tokenizer", 2018 (BPE:
Sennrich et al., 2016; unigram LM: Kudo, 2018). Its unknown piece is placed at id 0 and plays the
blank.
"""

from __future__ import annotations

import base64
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from semiasr.data.config import TokenizerConfig
from semiasr.errors import ConfigError, DataError

__all__ = [
    "BLANK_ID",
    "CharTokenizer",
    "SentencePieceTokenizer",
    "TextNormalizer",
    "Tokenizer",
    "build_tokenizer",
    "tokenizer_from_bytes",
    "tokenizer_from_dict",
]

BLANK_ID = 0
_SPACE = "▁"  # how characters and SentencePiece alike spell the word boundary
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class TextNormalizer:
    """Unicode normal form → case → punctuation removal → the normal form again → whitespace
    collapsed and stripped (idempotent: normalising normalised text changes nothing).

    ``remove_punctuation`` drops Unicode punctuation (categories P*) except the characters in
    ``keep`` (the apostrophe by default: "DON'T" stays one word). The result never holds "▁" (it
    becomes a space).
    """

    unicode_form: str = "NFC"
    lowercase: bool = False
    uppercase: bool = False
    remove_punctuation: bool = True
    keep: str = "'"

    def __call__(self, text: str) -> str:
        if self.unicode_form:
            text = unicodedata.normalize(self.unicode_form, text)
        if self.lowercase:
            text = text.lower()
        elif self.uppercase:
            text = text.upper()
        if self.remove_punctuation:
            text = "".join(" " if _is_punct(c) and c not in self.keep else c for c in text)
        if self.unicode_form and (self.lowercase or self.uppercase or self.remove_punctuation):
            # a case change can leave the normal form ("ΐ".upper() is not NFC) and so can a
            # removed mark between letters: normalising again keeps normalize(normalize(t)) =
            # normalize(t), so decoded text always encodes again
            text = unicodedata.normalize(self.unicode_form, text)
        return _WS.sub(" ", text.replace(_SPACE, " ")).strip()

    @classmethod
    def from_config(cls, cfg: TokenizerConfig) -> TextNormalizer:
        return cls(
            unicode_form=cfg.unicode_form,
            lowercase=cfg.lowercase,
            uppercase=cfg.uppercase,
            remove_punctuation=cfg.remove_punctuation,
            keep=cfg.keep_punctuation,
        )


def _is_punct(c: str) -> bool:
    return unicodedata.category(c).startswith("P")


class Tokenizer(Protocol):
    """What models, decoders and the data loader need from a tokenizer."""

    normalizer: TextNormalizer

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str, *, item: str | None = None) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def id_to_piece(self, i: int) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...

    def to_bytes(self) -> bytes: ...


class _Base:
    normalizer: TextNormalizer

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True).encode("utf-8")

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - overridden
        raise NotImplementedError


class CharTokenizer(_Base):
    """One id per character; the space between words is the symbol "▁".

    ``symbols[i]`` is the piece of id ``i + 1``.
    """

    kind = "char"

    def __init__(self, symbols: Sequence[str], normalizer: TextNormalizer | None = None):
        if len(set(symbols)) != len(symbols) or any(len(s) != 1 for s in symbols):
            raise ConfigError("character tokenizer symbols must be distinct single characters")
        self.symbols = list(symbols)
        self.normalizer = normalizer or TextNormalizer()
        self._ids = {s: i + 1 for i, s in enumerate(self.symbols)}

    @classmethod
    def train(cls, texts: Iterable[str], normalizer: TextNormalizer | None = None) -> CharTokenizer:
        """The alphabet of the normalised ``texts``, sorted; "▁" included."""
        norm = normalizer or TextNormalizer()
        chars: set[str] = {_SPACE}
        for t in texts:
            chars.update(norm(t).replace(" ", _SPACE))
        return cls(sorted(chars), norm)

    @property
    def vocab_size(self) -> int:
        return len(self.symbols) + 1

    def encode(self, text: str, *, item: str | None = None) -> list[int]:
        """Normalise and map each character to its id; unknown characters raise DataError."""
        t = self.normalizer(text).replace(" ", _SPACE)
        try:
            return [self._ids[c] for c in t]
        except KeyError:
            bad = sorted({c for c in t if c not in self._ids})
            raise DataError(
                f"text holds characters the tokenizer cannot encode: {bad!r} (text {text!r})",
                item=item,
            ) from None

    def decode(self, ids: Sequence[int]) -> str:
        """Ids → text; the blank (0) is dropped."""
        return "".join(self.symbols[i - 1] for i in ids if i != BLANK_ID).replace(_SPACE, " ")

    def id_to_piece(self, i: int) -> str:
        return "<blank>" if i == BLANK_ID else self.symbols[i - 1]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "symbols": self.symbols, "normalizer": asdict(self.normalizer)}


class SentencePieceTokenizer(_Base):
    """A SentencePiece model (BPE or unigram) whose unknown piece sits at id 0 as the blank."""

    def __init__(
        self, model: bytes, normalizer: TextNormalizer | None = None, *, kind: str = "bpe"
    ):
        import sentencepiece as spm

        self.model = bytes(model)
        self.normalizer = normalizer or TextNormalizer()
        self.kind = kind
        self._sp = spm.SentencePieceProcessor()
        self._sp.LoadFromSerializedProto(self.model)
        if self._sp.unk_id() != BLANK_ID:
            raise ConfigError("a SentencePiece model for semiasr needs its unknown piece at id 0")

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        *,
        kind: str = "bpe",
        vocab_size: int = 256,
        character_coverage: float = 1.0,
        normalizer: TextNormalizer | None = None,
        seed: int = 0,
    ) -> SentencePieceTokenizer:
        """Train on the normalised ``texts``; ``vocab_size`` counts the blank, an upper bound."""
        import sentencepiece as spm

        norm = normalizer or TextNormalizer()
        lines = [s for s in (norm(t) for t in texts) if s]
        if not lines:
            raise DataError("no text to train a SentencePiece model on")
        out = io.BytesIO()
        spm.set_random_generator_seed(int(seed))
        spm.SentencePieceTrainer.Train(
            sentence_iterator=iter(lines),
            model_writer=out,
            model_type=kind,
            vocab_size=int(vocab_size),
            hard_vocab_limit=False,
            character_coverage=character_coverage,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            split_digits=False,
            byte_fallback=False,
            unk_id=0,
            unk_piece="<blank>",
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            num_threads=1,
            minloglevel=2,
        )
        return cls(out.getvalue(), norm, kind=kind)

    @property
    def vocab_size(self) -> int:
        return int(self._sp.GetPieceSize())

    def encode(self, text: str, *, item: str | None = None) -> list[int]:
        t = self.normalizer(text)
        ids = self._sp.EncodeAsIds(t) if t else []
        if BLANK_ID in ids:
            pieces = self._sp.EncodeAsPieces(t)
            bad = sorted({c for p, i in zip(pieces, ids) if i == BLANK_ID for c in p} - {_SPACE})
            raise DataError(
                f"text holds characters the tokenizer cannot encode: {bad!r} (text {text!r})",
                item=item,
            )
        return list(ids)

    def decode(self, ids: Sequence[int]) -> str:
        return self._sp.DecodeIds([int(i) for i in ids if i != BLANK_ID])

    def id_to_piece(self, i: int) -> str:
        return self._sp.IdToPiece(int(i))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": base64.b64encode(self.model).decode("ascii"),
            "normalizer": asdict(self.normalizer),
        }


def tokenizer_from_dict(d: dict[str, Any]) -> CharTokenizer | SentencePieceTokenizer:
    """Inverse of ``to_dict``."""
    norm = TextNormalizer(**d.get("normalizer", {}))
    kind = d.get("kind")
    if kind == "char":
        return CharTokenizer(d["symbols"], norm)
    if kind in ("bpe", "unigram"):
        return SentencePieceTokenizer(base64.b64decode(d["model"]), norm, kind=kind)
    raise ConfigError(f"unknown tokenizer kind {kind!r} (expected char, bpe or unigram)")


def tokenizer_from_bytes(b: bytes) -> CharTokenizer | SentencePieceTokenizer:
    """Inverse of ``to_bytes``."""
    return tokenizer_from_dict(json.loads(b.decode("utf-8")))


def build_tokenizer(cfg: Any, texts: Iterable[str]) -> CharTokenizer | SentencePieceTokenizer:
    """The tokenizer ``cfg`` (a DataConfig or its ``tokenizer``) names, trained on ``texts``."""
    tcfg: TokenizerConfig = getattr(cfg, "tokenizer", cfg)
    norm = TextNormalizer.from_config(tcfg)
    if tcfg.kind == "char":
        return CharTokenizer.train(texts, norm)
    if tcfg.kind in ("bpe", "unigram"):
        return SentencePieceTokenizer.train(
            texts,
            kind=tcfg.kind,
            vocab_size=tcfg.vocab_size,
            character_coverage=tcfg.character_coverage,
            normalizer=norm,
        )
    raise ConfigError(
        f"data.tokenizer.kind is {tcfg.kind!r}; expected 'char', 'bpe' or 'unigram'",
        key="data.tokenizer.kind",
    )
