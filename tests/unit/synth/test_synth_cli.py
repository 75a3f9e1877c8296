"""``semiasr data synth`` as a typer command."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from semiasr.cli.synth import app
from semiasr.errors import DataError


@pytest.mark.slow
def test_cli_writes_a_corpus_and_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["synth", "--out", str(out), "--scale", "0.003", "--workers", "1", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "card.json").exists() and "source_train" in result.output
    assert "CPU" in result.output
    again = CliRunner().invoke(app, args)
    assert isinstance(again.exception, DataError)
    forced = CliRunner().invoke(app, [*args, "--force", "--seed", "2"])
    assert forced.exit_code == 0, forced.output
