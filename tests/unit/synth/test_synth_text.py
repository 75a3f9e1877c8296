"""Text side of the synthetic corpus: numbers, normalisation, generators, vocabulary."""

from __future__ import annotations

import random
import re

import pytest

from semiasr.data.synth.numbers import cardinal, digits, ordinal, year
from semiasr.data.synth.plan import plan_corpus
from semiasr.data.synth.text import (
    DOMAIN_GENERATORS,
    GENERATORS,
    generate_text,
    normalize_text,
    vocabulary,
)

_WORD_VALUE = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_WORD_VALUE.update(
    {
        w: 10 * k
        for k, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)
    }
)


def _parse_cardinal(words: str) -> int:
    """An independent reader of spelled-out numbers (the inverse of ``cardinal``)."""
    total, current = 0, 0
    for w in words.split():
        if w == "hundred":
            current *= 100
        elif w == "thousand":
            total, current = (total + current) * 1000, 0
        else:
            current += _WORD_VALUE[w]
    return total + current


def test_cardinal_round_trips_through_an_independent_parser() -> None:
    for n in [*range(0, 1200), *random.Random(0).sample(range(1200, 1_000_000), 3000)]:
        assert _parse_cardinal(cardinal(n)) == n, (n, cardinal(n))
    assert cardinal(305) == "three hundred five"
    assert cardinal(40_000) == "forty thousand"
    with pytest.raises(ValueError):
        cardinal(-1)


def test_digits_year_ordinal() -> None:
    assert digits("4070") == "four zero seven zero"
    assert digits("407", zero="oh") == "four oh seven"
    assert year(1984) == "nineteen eighty four"
    assert year(1906) == "nineteen oh six"
    assert year(2005) == "two thousand five"
    assert year(1900) == "nineteen hundred"
    assert [ordinal(n) for n in (1, 2, 3, 5, 8, 9, 12, 20, 21, 40, 99)] == [
        "first", "second", "third", "fifth", "eighth", "ninth", "twelfth", "twentieth",
        "twenty first", "fortieth", "ninety ninth",
    ]  # fmt: skip


def test_normalize_text() -> None:
    assert normalize_text("Call 911, now!") == "CALL NINE HUNDRED ELEVEN NOW"
    assert normalize_text("  it's   a  well-known  fact ") == "ITS A WELL KNOWN FACT"
    assert normalize_text("code 0042") == "CODE ZERO ZERO FOUR TWO"
    assert normalize_text("PIN 123456") == "PIN ONE TWO THREE FOUR FIVE SIX"


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_generators_give_normalised_varied_text(generator: str) -> None:
    rng = random.Random(1)
    texts = [generate_text(generator, rng) for _ in range(300)]
    for t in texts:
        assert re.fullmatch(r"[A-Z]+( [A-Z]+)*", t), t
        assert normalize_text(t) == t
    assert len(set(texts)) > 200  # templates x word lists, not a handful of fixed sentences


def test_full_scale_vocabulary_and_domain_gap() -> None:
    plan = plan_corpus(seed=0, scale=1.0)  # text only; nothing is synthesised
    texts = {name: [s.text for s in specs] for name, specs in plan.items()}
    overall = vocabulary(t for rows in texts.values() for t in rows)
    assert len(overall) >= 1000
    source = vocabulary(texts["source_train"] + texts["source_test"])
    target_tokens = [
        w
        for n in ("target_train", "target_unlabelled", "target_test")
        for t in texts[n]
        for w in t.split()
    ]
    oov = sum(w not in source for w in target_tokens) / len(target_tokens)
    assert 0.2 < oov < 0.6  # the target says many words the source never says, but not all
    for name, specs in plan.items():
        assert {s.generator for s in specs} <= set(DOMAIN_GENERATORS[specs[0].domain]), name
