"""The n-gram LM (interpolated Kneser–Ney) against a direct implementation of the formulas, and
its invariants: each conditional distribution sums to one, unseen contexts back off, files
round-trip and refuse what is not an LM."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from semiasr.errors import ConfigError
from semiasr.lm import NgramLM

V = 5  # ids 1..4 are tokens, 0 is the sentence boundary
SENTS = [[1, 2, 3], [1, 2, 4, 2], [3, 3, 1], [2, 4], [1, 2, 3, 4, 1]]


def _direct_bigram(sents: list[list[int]], vocab: int):
    """P(w | h) of interpolated Kneser–Ney, order 2, computed from the occurrence lists directly."""
    bigrams = [(a, b) for s in sents for a, b in zip([0, *s], [*s, 0])]
    c = Counter(bigrams)

    def discount(counts) -> float:
        n1 = sum(1 for x in counts if x == 1)
        n2 = sum(1 for x in counts if x == 2)
        return n1 / (n1 + 2 * n2) if n1 else 0.5

    d2 = discount(c.values())
    cont = Counter(b for (_, b) in c)  # N1+(• w): distinct predecessors of w
    d1 = discount(cont.values())
    total_cont = sum(cont.values())

    def p1(w: int) -> float:
        return max(cont[w] - d1, 0) / total_cont + d1 * len(cont) / total_cont / vocab

    def p2(w: int, h: int) -> float:
        ch = sum(n for (a, _), n in c.items() if a == h)
        if ch == 0:
            return p1(w)
        types = sum(1 for (a, _) in c if a == h)
        return max(c[(h, w)] - d2, 0) / ch + d2 * types / ch * p1(w)

    return p2


def test_bigram_equals_the_formula_computed_directly() -> None:
    lm = NgramLM.fit(SENTS, V, order=2)
    p2 = _direct_bigram(SENTS, V)
    for h in range(V):
        got = lm.probs(lm.context([h] if h else []))
        want = [p2(w, h) for w in range(V)]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_every_conditional_distribution_sums_to_one(order: int) -> None:
    lm = NgramLM.fit(SENTS, V, order=order)
    rng = np.random.default_rng(0)
    histories = [[], [1], [1, 2], [4, 4, 4], *[list(rng.integers(1, V, 6)) for _ in range(20)]]
    for h in histories:
        p = lm.probs(lm.context(h))
        assert np.all(p > 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_unigram_is_the_discounted_count_plus_the_uniform_share() -> None:
    lm = NgramLM.fit(SENTS, V, order=1)
    c = Counter(x for s in SENTS for x in [*s, 0])
    n, d = sum(c.values()), lm.discounts[0]
    want = [max(c[w] - d, 0) / n + d * len(c) / n / V for w in range(V)]
    np.testing.assert_allclose(lm.probs(()), want, atol=1e-12)


def test_continuation_counts_favour_tokens_seen_after_many_others() -> None:
    # token 4 is frequent but only ever follows 3; token 2 is rarer but follows many tokens
    sents = [[3, 4]] * 10 + [[1, 2], [3, 2], [4, 2]]
    lm = NgramLM.fit(sents, V, order=2)
    p = lm.probs(lm.context([1]))  # after 1, only 2 was seen; the rest comes from the unigram
    lower = lm.probs(())
    assert lower[2] > lower[4]  # 2 has three predecessors, 4 has one
    assert p[2] > p[4]


def test_score_and_perplexity() -> None:
    lm = NgramLM.fit(SENTS, V, order=3)
    s = [1, 2, 3]
    want = sum(math.log(lm.probs(lm.context(s[:i]))[w]) for i, w in enumerate([*s, 0]))
    assert lm.score(s) == pytest.approx(want, abs=1e-12)
    # higher orders fit the training text better
    ppl = [NgramLM.fit(SENTS, V, n).perplexity(SENTS) for n in (1, 2, 3, 4)]
    assert ppl == sorted(ppl, reverse=True) and ppl[0] > ppl[-1]


def test_save_load_round_trip_and_bad_files(tmp_path) -> None:
    lm = NgramLM.fit(SENTS, V, order=3)
    path = tmp_path / "lm.json"
    lm.save(path)
    back = NgramLM.load(path)
    for h in ([], [1], [2, 4], [3, 3, 3]):
        np.testing.assert_array_equal(back.log_probs(h), lm.log_probs(h))
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(ConfigError, match=r"bad\.json"):
        NgramLM.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"broken\.json"):
        NgramLM.load(tmp_path / "broken.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"list\.json: not a semiasr n-gram LM"):
        NgramLM.load(tmp_path / "list.json")
    damaged = {k: v for k, v in json.loads(path.read_text()).items() if k != "counts"}
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    with pytest.raises(ConfigError, match=r"damaged\.json: a damaged n-gram LM .*counts"):
        NgramLM.load(tmp_path / "damaged.json")


def test_an_lm_of_another_vocabulary_is_refused_before_decoding(tmp_path) -> None:
    from types import SimpleNamespace

    from semiasr.tasks.evaluate import with_lm

    path = tmp_path / "lm.json"
    NgramLM.fit(SENTS, V, order=2).save(path)
    decoder = SimpleNamespace(tokenizer=SimpleNamespace(vocab_size=V + 3), fusion=None)
    with pytest.raises(ConfigError, match=rf"lm\.json: the LM has {V} ids .* {V + 3}"):
        with_lm(decoder, 0.5, lm_path=path)
    decoder.tokenizer.vocab_size = V
    assert with_lm(decoder, 0.5, lm_path=path).fusion is not None


def test_fit_rejects_ids_outside_the_vocabulary_and_empty_input() -> None:
    with pytest.raises(ValueError, match="sentence 1"):
        NgramLM.fit([[1, 2], [1, 7]], V)
    with pytest.raises(ValueError, match="sentence 0"):
        NgramLM.fit([[0, 1]], V)  # 0 is the boundary, never a token
    with pytest.raises(ValueError, match="no sentences"):
        NgramLM.fit([], V)
    with pytest.raises(ConfigError):
        NgramLM.fit(SENTS, V, order=0)


def test_cached_distributions_are_read_only_and_the_cache_is_bounded() -> None:
    lm = NgramLM.fit(SENTS, V, order=3)
    with pytest.raises(ValueError):
        lm.probs(lm.context([3, 3]))[0] = 0.0  # shared with its lower orders: must not be edited
    lm._cache_limit = 4
    for h in ([1], [2], [3], [4], [1, 2], [2, 3], [3, 4]):
        lm.log_probs(h)
    assert len(lm._cache) <= 4 and len(lm._log_cache) <= 4
    np.testing.assert_allclose(lm.probs(lm.context([1, 2])).sum(), 1.0, atol=1e-12)
