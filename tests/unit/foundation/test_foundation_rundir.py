from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from semiasr.errors import RunDirError
from semiasr.rundir import atomic_write_text, open_run_dir


def test_new_run_writes_config_meta_and_refuses_reuse(tmp_path: Path) -> None:
    run = open_run_dir(tmp_path, "r1", "a: 1\n")
    assert run.config_file.read_text() == "a: 1\n"
    meta = json.loads((run.path / "meta.json").read_text())
    assert "torch" in meta["packages"] and "git_revision" in meta
    m = run.metrics()
    m.write(step=1, loss=2.5)
    m.close()
    assert json.loads(run.metrics_file.read_text())["loss"] == 2.5
    with pytest.raises(RunDirError, match="--resume"):
        open_run_dir(tmp_path, "r1", "a: 2\n")


def test_resume_keeps_and_overwrite_clears(tmp_path: Path) -> None:
    run = open_run_dir(tmp_path, "r", "a: 1\n")
    (run.checkpoints / "step-1.pt").write_bytes(b"x")
    again = open_run_dir(tmp_path, "r", "a: 1\n", mode="resume")
    assert again.resumed and (again.checkpoints / "step-1.pt").exists()
    fresh = open_run_dir(tmp_path, "r", "a: 1\n", mode="overwrite")
    assert not fresh.resumed and not (fresh.checkpoints / "step-1.pt").exists()


def test_atomic_write_leaves_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"], "temporary file left behind"


def test_logger_writes_to_run_log(tmp_path: Path) -> None:
    run = open_run_dir(tmp_path, "r", "")
    log = run.logger("semiasr.test")
    log.info("hello run")
    for h in log.handlers:
        h.flush()
    assert "hello run" in run.log_file.read_text()
