from __future__ import annotations

import pytest
from torch import nn

from semiasr.adapt.names import glob_match, key_of, matching_modules, name_matches_any
from semiasr.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "pattern", "expected"),
    [
        ("encoder.layers.0", "encoder.layers.*", True),
        ("encoder.layers.10", "encoder.layers.*", True),
        ("encoder.layers.0.ff1", "encoder.layers.*", False),
        ("encoder.layers.0.ff1", "encoder.layers.*.ff1", True),
        ("encoder.layers.0.ff1.linear1", "encoder.**.linear1", True),
        ("encoder.linear1", "encoder.**.linear1", True),
        ("encoder.layers.0.attn.q", "encoder.layers.*.attn.**", True),
        ("encoder.layers.0.attn", "encoder.layers.*.attn.**", True),
        ("encoder.layers.0.attnx.q", "encoder.layers.*.attn.**", False),
        ("predictor", "pred*", True),
        ("joiner.weight", "**", True),
        ("", "", True),
        ("a", "", False),
    ],
)
def test_glob_match(name: str, pattern: str, expected: bool) -> None:
    assert glob_match(name, pattern) is expected


def test_parameter_matches_through_its_module_prefix() -> None:
    assert name_matches_any("predictor.embed.weight", ["predictor"])
    assert name_matches_any("predictor.embed.weight", ["predictor.*"])
    assert name_matches_any("adapters.encoder-layers-0.up.bias", ["adapters"])
    assert not name_matches_any("encoder.layers.0.ff1.weight", ["predictor", "joiner"])
    assert not name_matches_any("predictors.x", ["predictor"])


def test_key_of_is_dot_free_and_distinct() -> None:
    assert key_of("encoder.layers.0.ff2") == "encoder-layers-0-ff2"
    assert "." not in key_of("a.b.c")
    assert key_of("a.b_c") != key_of("a_b.c")


def test_matching_modules_raises_naming_the_pattern() -> None:
    model = nn.Sequential(nn.Linear(2, 2))
    assert [n for n, _ in matching_modules(model, "0")] == ["0"]
    with pytest.raises(ConfigError, match="nope"):
        matching_modules(model, "nope.*")
