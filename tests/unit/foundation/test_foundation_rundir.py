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


@pytest.mark.parametrize("name", ["", ".", "..", "../outside", "a/b", "/abs", " padded"])
def test_run_names_must_be_plain_folder_names(tmp_path: Path, name: str) -> None:
    """--overwrite deletes the run folder: a name must not reach outside the root."""
    root, outside = tmp_path / "runs", tmp_path / "outside"
    (root / "other").mkdir(parents=True)
    (root / "other" / "keep.txt").write_text("x")
    outside.mkdir()
    (outside / "data.txt").write_text("precious")
    for mode in ("new", "resume", "overwrite"):
        with pytest.raises(RunDirError, match="plain folder name"):
            open_run_dir(root, name, "a: 1\n", mode=mode)
    assert (outside / "data.txt").read_text() == "precious"
    assert (root / "other" / "keep.txt").is_file()


def test_a_linked_run_resumes_but_is_never_deleted(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    disk = tmp_path / "bigdisk" / "r"
    run = open_run_dir(tmp_path / "bigdisk", "r", "a: 1\n")
    (run.checkpoints / "step-1.pt").write_bytes(b"x")
    (tmp_path / "runs" / "r").symlink_to(disk)
    again = open_run_dir(tmp_path / "runs", "r", "a: 1\n", mode="resume")
    assert again.resumed and (again.checkpoints / "step-1.pt").is_file()
    with pytest.raises(RunDirError, match="is a link"):
        open_run_dir(tmp_path / "runs", "r", "a: 1\n", mode="overwrite")
    assert (disk / "checkpoints" / "step-1.pt").is_file()


def test_a_start_that_failed_is_cleared_and_started_again(tmp_path: Path) -> None:
    """A run folder with only config and meta (the command stopped before training) does not
    block the corrected command, which needs neither --resume nor --overwrite; what the failed
    start left (a tokenizer of other settings) is not taken for the new run's."""
    failed = open_run_dir(tmp_path, "r", "a: 1\n")
    (failed.path / "tokenizer.json").write_text("{}")
    again = open_run_dir(tmp_path, "r", "a: 2\n")
    assert not again.resumed and again.config_file.read_text() == "a: 2\n"
    assert not (again.path / "tokenizer.json").exists()


def test_a_folder_that_is_not_a_run_is_not_cleared(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(RunDirError, match="exists already"):
        open_run_dir(tmp_path, "mine", "a: 1\n")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_resume_refuses_settings_the_checkpoints_fix(tmp_path: Path) -> None:
    old = "model:\n  d_model: 32\noptim:\n  lr: 0.002\ntrain:\n  max_steps: 4\n"
    old += "data:\n  features:\n    cache: none\n"
    run = open_run_dir(tmp_path, "r", old)
    (run.checkpoints / "step-4.pt").write_bytes(b"x")
    first = json.loads((run.path / "meta.json").read_text())
    for changed, key in (("d_model: 64", "model.d_model"), ("lr: 0.5", "optim.lr")):
        new = old.replace("d_model: 32" if "d_model" in changed else "lr: 0.002", changed)
        with pytest.raises(RunDirError, match=key.replace(".", r"\.")):
            open_run_dir(tmp_path, "r", new, mode="resume")
        assert run.config_file.read_text() == old  # nothing rewritten by a refused resume
    # training settings may change, and so may how features are cached
    longer = old.replace("max_steps: 4", "max_steps: 8").replace("cache: none", "cache: memory")
    again = open_run_dir(tmp_path, "r", longer, mode="resume")
    assert again.resumed and again.config_file.read_text() == longer
    meta = json.loads((run.path / "meta.json").read_text())
    assert meta["started"] == first["started"] and len(meta["resumes"]) == 1
    # the resume records what it changed, since config.yaml now holds only the new values
    assert meta["resumes"][0]["changed"] == {
        "data.features.cache": ["none", "memory"],
        "train.max_steps": [4, 8],
    }
    open_run_dir(tmp_path, "r", longer, mode="resume")  # an unchanged resume records nothing
    assert "changed" not in json.loads((run.path / "meta.json").read_text())["resumes"][1]


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
