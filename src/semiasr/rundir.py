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


def run_path(root: str | Path, name: str) -> Path:
    """``root/name`` for a run ``name`` that is one plain folder name: not empty, not ``.`` or
    ``..``, no path separator (``--overwrite`` deletes the folder, which must lie inside ``root``)."""
    bad = (
        not name
        or name in {".", ".."}
        or any(sep in name for sep in ("/", "\\", os.sep))
        or name != name.strip()
    )
    if bad:
        raise RunDirError(
            f"run name {name!r} is not a plain folder name (no '/', not empty, '.' or '..'): "
            "choose another name=..."
        )
    return Path(root) / name


# settings a resumed run cannot take on: the checkpoint's model, optimizer and schedule win (a
# change would be ignored, or not fit), and the tokenizer and features define what the model reads
FIXED_ON_RESUME = (
    "model.",
    "data.tokenizer.",
    "data.features.",
    "optim.",
    "sched.",
    "adapt.",
    "ssl.",
    "seed",
)  # fmt: skip  (an adaptation's base checkpoint is checked by its SHA-256, tasks.adapt)
# … except how they are computed or cached, and what only a fresh start reads
FREE_ON_RESUME = ("data.features.cache", "optim.implementation", "model.init_encoder")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def _check_resume_config(
    path: Path, old_yaml: str, new_yaml: str, also: tuple[str, ...] = ()
) -> dict[str, list]:
    """Refuse a resume whose config changes what the run's checkpoints fix (``FIXED_ON_RESUME``,
    and the key prefixes ``also``); keys only one side has (an option newer than the run) are not
    compared. Returns what the resume changes otherwise: {key: [old, new]} over every flattened
    key (a key only one side has: [None, new] or [old, None])."""
    import yaml

    old, new = _flatten(yaml.safe_load(old_yaml) or {}), _flatten(yaml.safe_load(new_yaml) or {})
    fixed = FIXED_ON_RESUME + tuple(also)
    changed = sorted(
        k
        for k in old.keys() & new.keys()
        if old[k] != new[k] and k.startswith(fixed) and k not in FREE_ON_RESUME
    )
    if changed:
        diffs = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in changed[:6])
        more = f" and {len(changed) - 6} more" if len(changed) > 6 else ""
        raise RunDirError(
            f"{path} cannot resume with other settings of what its checkpoints fix ({diffs}{more}); "
            "resume without those overrides, or start a new run (another name=..., or --overwrite)"
        )
    keys = sorted(old.keys() | new.keys())
    return {k: [old.get(k), new.get(k)] for k in keys if old.get(k) != new.get(k)}


def resume_refusal(path: Path, config_yaml: str, also: tuple[str, ...] = ()) -> str | None:
    """Why resuming the run at ``path`` with ``config_yaml`` would be refused (its config changes
    what the checkpoints fix, or a key under the prefixes ``also``), or None where it would not (or
    there is no run config to compare)."""
    if not (path / "config.yaml").is_file():
        return None
    try:
        old_yaml = (path / "config.yaml").read_text(encoding="utf-8")
        _check_resume_config(path, old_yaml, config_yaml, also)
    except RunDirError as e:
        return str(e)
    return None


def has_results(path: Path) -> bool:
    """Whether a run folder holds anything training made (a checkpoint or logged metrics); one
    with only its config, meta and tokenizer is a start that failed, and is started again."""
    ckpts = path / "checkpoints"
    return (path / "metrics.jsonl").exists() or (ckpts.is_dir() and any(ckpts.iterdir()))


def open_run_dir(
    root: str | Path, name: str, config_yaml: str, mode: str = "new", extra: dict | None = None
) -> RunDir:
    """Create (or reopen) ``root/name``.

    ``mode``: ``"new"`` refuses a run that has results already; ``"resume"`` reopens it (or creates
    it when absent) and refuses a config that changes what its checkpoints fix; ``"overwrite"``
    deletes it first. A run folder without results (config and meta but no checkpoint or metrics:
    a start that failed) is cleared and started again in any mode; a folder that is not a run
    counts as existing; a link is never deleted (resuming through one works). Writes ``config.yaml`` and ``meta.json`` (git revision, package versions, host)
    atomically; a resume keeps ``meta.json``'s first start and appends to its ``resumes``, with
    the config keys the resume changed (``changed``: {key: [old, new]}), since ``config.yaml`` then
    holds only the new values.
    """
    if mode not in {"new", "resume", "overwrite"}:
        raise ValueError(f"mode must be 'new', 'resume' or 'overwrite', got {mode!r}")
    path = run_path(root, name)
    nonempty = path.is_dir() and any(path.iterdir())
    a_run = (path / "config.yaml").is_file() and (path / "meta.json").is_file()
    # a folder that is not a run is never taken for a failed start
    exists = nonempty and (has_results(path) or not a_run)
    if exists and mode == "new":
        raise RunDirError(
            f"run directory {path} exists already; pass --resume to continue it or --overwrite "
            "to start it afresh (or choose another name=...)"
        )
    if nonempty and (mode == "overwrite" or not exists):
        # a folder without results is a start that failed: its tokenizer and statistics would
        # otherwise be taken for this run's
        if path.is_symlink():  # its target may hold anything: not ours to delete
            raise RunDirError(
                f"{path} is a link to {path.resolve()}: remove the link (or what it points to) "
                "yourself to start this run afresh"
            )
        shutil.rmtree(path)
        exists = False
    resuming = exists and mode == "resume"
    changed: dict[str, list] = {}
    if resuming and (path / "config.yaml").is_file():
        old_yaml = (path / "config.yaml").read_text(encoding="utf-8")
        changed = _check_resume_config(path, old_yaml, config_yaml)
    path.mkdir(parents=True, exist_ok=True)
    (path / "checkpoints").mkdir(exist_ok=True)
    atomic_write_text(path / "config.yaml", config_yaml)
    now = {
        "git_revision": git_revision(Path(__file__).parent),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    meta = {
        **now,
        "packages": package_versions(),
        "python": platform.python_version(),
        "host": platform.node(),
        "platform": platform.platform(),
        **(extra or {}),
    }
    if resuming and (path / "meta.json").is_file():
        try:
            first = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            first = None
        if isinstance(first, dict):
            # what the resume changed (training length, augmentation, ...): config.yaml holds only
            # the newest values
            entry = {**now, "host": meta["host"], **({"changed": changed} if changed else {})}
            meta = {**first, "resumes": [*first.get("resumes", []), entry]}
    atomic_write_text(path / "meta.json", json.dumps(meta, indent=2) + "\n")
    return RunDir(path=path, resumed=resuming)
