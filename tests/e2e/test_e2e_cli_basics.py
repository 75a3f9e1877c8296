"""The `semiasr` command as a user runs it: a real subprocess, exit codes and messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

import semiasr


def run(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "semiasr", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"semiasr {semiasr.__version__}"


def test_help_lists_commands() -> None:
    r = run("--help")
    assert r.returncode == 0
    for cmd in ("info", "config"):
        assert cmd in r.stdout


def test_info() -> None:
    r = run("info")
    assert r.returncode == 0 and "torch" in r.stdout and "threads" in r.stdout


def test_config_show_applies_override() -> None:
    r = run("config", "show", "demo", "model.d_model=7")
    assert r.returncode == 0, r.stderr
    assert "d_model: 7" in r.stdout


@pytest.mark.parametrize(
    ("override", "needles"),
    [("modle.d_model=1", ["modle", "model"]), ("model.d_model=abc", ["model.d_model", "int"])],
)
def test_config_errors_exit_2(override: str, needles: list[str]) -> None:
    r = run("config", "show", "demo", override)
    assert r.returncode == 2
    for n in needles:
        assert n in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_command_exits_2() -> None:
    r = run("no-such-command")
    assert r.returncode == 2 and "no-such-command" in (r.stderr + r.stdout)
