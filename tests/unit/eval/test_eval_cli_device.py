"""`--device` reaches the model loader from `semiasr decode`, `transcribe` and `pseudo-label` (the
commands are run through typer's test runner with the loader replaced by one that records it)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import semiasr.tasks
import semiasr.tasks.pseudo
import semiasr.tasks.transcribe
from semiasr.cli.app import _register_subcommands, app

runner = CliRunner()


class _Loaded(Exception):
    """Raised by the stand-in loader: the command got as far as loading the model."""


@pytest.fixture
def recorded(monkeypatch) -> list[str]:
    devices: list[str] = []

    def fake_load(run, which="best", device="cpu", overrides=()):
        devices.append(device)
        raise _Loaded

    for module in (semiasr.tasks, semiasr.tasks.pseudo, semiasr.tasks.transcribe):
        monkeypatch.setattr(module, "load_trained", fake_load)
    _register_subcommands()
    return devices


@pytest.mark.parametrize(
    "args",
    [
        ["decode", "runs/x", "test"],
        ["transcribe", "runs/x", "a.wav"],
        ["pseudo-label", "runs/x", "--split", "test", "--out", "pl.jsonl"],
    ],
)
def test_device_option_reaches_the_loader(recorded: list[str], args: list[str]) -> None:
    r = runner.invoke(app, [*args, "--device", "cuda:3"])
    assert isinstance(r.exception, _Loaded), r.output
    r = runner.invoke(app, args)
    assert isinstance(r.exception, _Loaded), r.output
    assert recorded == ["cuda:3", "cpu"]  # given, then the default


@pytest.mark.parametrize(
    "args",
    [
        ["decode", "runs/x", "test"],
        ["transcribe", "runs/x", "a.wav"],
        ["eval", "runs/x", "test"],
        ["pseudo-label", "runs/x", "--split", "test", "--out", "pl.jsonl"],
    ],
)
def test_a_beam_below_one_is_refused_before_loading(recorded: list[str], args: list[str]) -> None:
    """`--beam 0` was a traceback after the model and data had loaded."""
    r = runner.invoke(app, [*args, "--method", "beam", "--beam", "0"])
    assert r.exit_code == 2 and "--beam" in r.output, r.output
    assert recorded == []
