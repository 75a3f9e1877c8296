"""Tokenizers: id 0 is the blank and never produced, lossless round trips (hypothesis),
serialisation without pickle, and a DataError naming the utterance for characters the tokenizer
cannot encode."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semiasr.data.config import TokenizerConfig
from semiasr.data.tokenizer import (
    CharTokenizer,
    SentencePieceTokenizer,
    TextNormalizer,
    build_tokenizer,
    tokenizer_from_bytes,
    tokenizer_from_dict,
)
from semiasr.errors import ConfigError, DataError

CORPUS = [
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "PACK MY BOX WITH FIVE DOZEN LIQUOR JUGS",
    "HOW VEXINGLY QUICK DAFT ZEBRAS JUMP",
    "SPHINX OF BLACK QUARTZ JUDGE MY VOW",
    "DON'T STOP THE NINE ZERO ONE",
] * 20
ALPHABET = sorted(set("".join(CORPUS)) - {" "})

_sp_cache: dict[str, SentencePieceTokenizer] = {}


def _sp(kind: str) -> SentencePieceTokenizer:
    if kind not in _sp_cache:
        _sp_cache[kind] = SentencePieceTokenizer.train(CORPUS, kind=kind, vocab_size=60)
    return _sp_cache[kind]


texts = st.lists(st.text(alphabet=ALPHABET, min_size=1, max_size=8), min_size=0, max_size=6).map(
    " ".join
)


def test_data_normalizer() -> None:
    n = TextNormalizer()
    assert n("  Hello,   world!  ") == "Hello world"
    assert n("don't—stop") == "don't stop"
    assert n("a▁b") == "a b"
    assert TextNormalizer(lowercase=True)("ABC De") == "abc de"
    assert TextNormalizer(uppercase=True, remove_punctuation=False)("a.b") == "A.B"
    assert n("e\u0301") == "\u00e9"  # NFC


@pytest.mark.parametrize("case", ["upper", "lower", "none"])
@pytest.mark.parametrize("form", ["NFC", "NFD", "NFKC", "NFKD"])
@settings(max_examples=80, deadline=None)
@given(st.text(min_size=0, max_size=12))
def test_data_normalizer_is_idempotent(case: str, form: str, text: str) -> None:
    """Normalised text normalises to itself, in every form and case: decoded text (already
    normalised) must encode again. "ΐ".upper() left NFC and broke that."""
    n = TextNormalizer(unicode_form=form, uppercase=case == "upper", lowercase=case == "lower")
    assert n(n(text)) == n(text)


def test_data_uppercase_greek_round_trips() -> None:
    tok = CharTokenizer.train(["ΐ"], TextNormalizer(uppercase=True))
    assert tok.decode(tok.encode(tok.decode(tok.encode("ΐ")))) == tok.decode(tok.encode("ΐ"))


@settings(max_examples=60, deadline=None)
@given(texts)
def test_data_char_round_trip(text: str) -> None:
    tok = CharTokenizer.train(CORPUS)
    ids = tok.encode(text)
    assert all(1 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == TextNormalizer()(text)


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
@settings(max_examples=40, deadline=None)
@given(text=texts)
def test_data_sentencepiece_round_trip(kind: str, text: str) -> None:
    tok = _sp(kind)
    ids = tok.encode(text)
    assert all(1 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == TextNormalizer()(text)


@pytest.mark.parametrize("kind", ["char", "bpe", "unigram"])
def test_data_tokenizer_serialises_without_pickle(kind: str) -> None:
    tok = build_tokenizer(TokenizerConfig(kind=kind, vocab_size=50), CORPUS)
    assert tok.id_to_piece(0) == "<blank>"
    d = json.loads(json.dumps(tok.to_dict()))
    for other in (tokenizer_from_dict(d), tokenizer_from_bytes(tok.to_bytes())):
        assert other.vocab_size == tok.vocab_size
        for t in CORPUS[:5]:
            assert other.encode(t) == tok.encode(t)
    assert tok.to_bytes().lstrip().startswith(b"{")
    if kind != "char":
        assert tok.vocab_size <= 50 and tok.kind == kind
    else:
        assert tok.vocab_size == len(ALPHABET) + 2  # blank and word boundary


def test_data_char_vocab_and_ids() -> None:
    tok = CharTokenizer.train(["AB BA"])
    assert tok.vocab_size == 4  # blank, A, B, ▁
    assert tok.encode("AB BA") == [1, 2, 3, 2, 1]
    assert tok.decode([0, 1, 0, 2, 3]) == "AB "


@pytest.mark.parametrize("kind", ["char", "bpe", "unigram"])
def test_data_unencodable_characters_name_the_utterance(kind: str) -> None:
    tok = build_tokenizer(TokenizerConfig(kind=kind, vocab_size=50), CORPUS)
    with pytest.raises(DataError, match=r"utt_7: .*'é'"):
        tok.encode("THE CAFé", item="utt_7")


def test_data_tokenizer_config_errors() -> None:
    with pytest.raises(ConfigError, match="kind"):
        build_tokenizer(TokenizerConfig(kind="wordpiece"), CORPUS)
    with pytest.raises(DataError):
        SentencePieceTokenizer.train(["", "  "], kind="bpe")
