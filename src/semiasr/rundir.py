"""Run directories: ``runs/<name>/`` with the resolved config, metrics, log, checkpoints and provenance.

Every command that trains or evaluates writes one. An existing run is never overwritten silently: pass
``mode="resume"`` to continue it or ``mode="overwrite"`` to start it afresh.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from semiasr.errors import RunDirError

__all__ = ["MetricsWriter", "RunDir", "atomic_write_bytes", "atomic_write_text", "open_run_dir"]

_TRACKED_PACKAGES = (
    "semiasr",
    "torch",
    "numpy",
    "lhotse",
    "sentencepiece",
    "omegaconf",
    "soundfile",
    "jiwer",
)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, flush to disk, then rename: a crash leaves the old
    file or the new one, never half of either."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def git_revision(cwd: str | Path | None = None) -> str | None:
    """The git commit of the working tree (with ``-dirty`` when it has changes), or None outside git."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    out = {}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


class MetricsWriter:
    """Appends one JSON object per line to ``metrics.jsonl`` and flushes each line."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, **record: Any) -> None:
        record.setdefault("time", round(time.time(), 3))
        self._f.write(json.dumps(record, default=float) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


@dataclass
class RunDir:
    """A run's folder. ``checkpoints`` holds ``step-N.pt`` files; ``config.yaml`` the resolved config."""

    path: Path
    resumed: bool

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_file(self) -> Path:
        return self.path / "log.txt"

    def metrics(self) -> MetricsWriter:
        return MetricsWriter(self.metrics_file)

    def logger(self, name: str = "semiasr") -> logging.Logger:
        """A logger whose records reach ``log.txt`` of this run.

        The file handler sits on the ``semiasr`` logger (once per run directory); loggers named
        ``semiasr.*`` propagate to it, so each record is written once.
        """
        root = logging.getLogger("semiasr")
        root.setLevel(logging.INFO)
        target = str(self.log_file.resolve())
        if not any(getattr(h, "baseFilename", None) == target for h in root.handlers):
            handler = logging.FileHandler(target, encoding="utf-8")
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
            )
            root.addHandler(handler)
        return logging.getLogger(name if name.startswith("semiasr") else f"semiasr.{name}")


def open_run_dir(
    root: str | Path, name: str, config_yaml: str, mode: str = "new", extra: dict | None = None
) -> RunDir:
    """Create (or reopen) ``root/name``.

    ``mode``: ``"new"`` refuses an existing non-empty run; ``"resume"`` reopens it (or creates it when
    absent); ``"overwrite"`` deletes it first. Writes ``config.yaml`` and ``meta.json`` (git revision,
    package versions, host) atomically.
    """
    if mode not in {"new", "resume", "overwrite"}:
        raise ValueError(f"mode must be 'new', 'resume' or 'overwrite', got {mode!r}")
    path = Path(root) / name
    exists = path.exists() and any(path.iterdir())
    if exists and mode == "new":
        raise RunDirError(
            f"run directory {path} exists already; pass --resume to continue it or --overwrite "
            "to start it afresh (or choose another name=...)"
        )
    if exists and mode == "overwrite":
        shutil.rmtree(path)
        exists = False
    path.mkdir(parents=True, exist_ok=True)
    (path / "checkpoints").mkdir(exist_ok=True)
    atomic_write_text(path / "config.yaml", config_yaml)
    meta = {
        "git_revision": git_revision(Path(__file__).parent),
        "packages": package_versions(),
        "python": platform.python_version(),
        "host": platform.node(),
        "platform": platform.platform(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }
    atomic_write_text(path / "meta.json", json.dumps(meta, indent=2) + "\n")
    return RunDir(path=path, resumed=exists and mode == "resume")
