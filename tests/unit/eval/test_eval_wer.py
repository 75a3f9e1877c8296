from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from semiasr.eval import (
    Utterance,
    aligned_text,
    error_counts,
    evaluate,
    plot_training_curves,
    wer,
    write_report,
)


def levenshtein(a: list[str], b: list[str]) -> int:
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[-1]


words = st.lists(st.sampled_from(["A", "B", "C", "DD"]), max_size=7)


@given(words, words)
def test_error_count_is_edit_distance(r: list[str], h: list[str]) -> None:
    e = error_counts(" ".join(r), " ".join(h))
    assert e.errors == levenshtein(r, h)
    assert e.ref_len == len(r)


def test_counts_and_corpus_wer_sum_counts() -> None:
    e = error_counts("A B C D", "A C C D E")
    assert (e.sub, e.dels, e.ins, e.ref_len) == (1, 0, 1, 4)
    # 2 errors over 4 words + 1 deletion over 1 word = 3 / 5, not the mean of 50% and 100%
    assert wer(["A B C D", "X"], ["A C C D E", ""]) == pytest.approx(60.0)


def test_cer_counts_characters() -> None:
    e = error_counts("AB CD", "AB CE", unit="char")
    assert (e.errors, e.ref_len) == (1, 5)
    # spaces are characters: a merged or a split word is one edit (both were 0)
    assert error_counts("ONE TWO", "ONETWO", unit="char").dels == 1
    assert error_counts("SEVEN", "SEV EN", unit="char").ins == 1
    assert evaluate([Utterance("u", "ONE TWO", "ONETWO")]).cer == pytest.approx(100 / 7)


@given(words, words)
def test_char_error_count_is_edit_distance_over_characters_and_spaces(
    r: list[str], h: list[str]
) -> None:
    ref, hyp = " ".join(r), " ".join(h)
    e = error_counts(ref, hyp, unit="char")
    assert e.errors == levenshtein(list(ref), list(hyp))
    assert e.ref_len == len(ref)


def test_aligned_text_marks_operations() -> None:
    text = aligned_text("THE CAT SAT", "THE BAT SAT DOWN")
    ref, hyp, ops = text.splitlines()
    assert ref.startswith("REF: THE CAT SAT") and hyp.startswith("HYP: THE BAT SAT DOWN")
    assert ops.split() == ["S", "I"]


def test_report_groups_and_writes(tmp_path: Path) -> None:
    utts = [
        Utterance("a", "ONE TWO", "ONE TWO", "source", "s1"),
        Utterance("b", "THREE FOUR", "THREE FIVE", "target", "s2"),
        Utterance("c", "SIX", "", "target", "s2"),
    ]
    rep = evaluate(utts)
    assert rep.by_domain["source"][0].rate == 0.0
    assert rep.by_domain["target"][0].rate == pytest.approx(200 / 3)
    # one error each; the deletion is the larger share of its utterance, so it ranks first
    assert [u.id for u, _ in rep.worst] == ["c", "b"]
    paths = write_report(rep, tmp_path, command="semiasr eval x")
    data = json.loads(paths["json"].read_text())
    assert data["wer"]["rate"] == pytest.approx(40.0)
    assert "semiasr eval x" in paths["md"].read_text()
    assert paths["png"].stat().st_size > 1000


def test_training_curves_plot(tmp_path: Path) -> None:
    m = tmp_path / "metrics.jsonl"
    m.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"step": 1, "loss": 3.0},
                {"step": 2, "loss": 2.0},
                {"step": 2, "valid_wer": 50.0},
            ]
        )
    )
    out = plot_training_curves(m, tmp_path / "c.png")
    assert out.stat().st_size > 1000
