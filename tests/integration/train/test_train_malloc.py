"""glibc's malloc tuning of the ``semiasr`` process: applied once, refusable, and it removes the page
faults of freeing and re-allocating tensors of a few MB. Each case runs in a fresh interpreter,
since the settings last for the whole process."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the tuning applies to glibc's malloc on Linux only",
)

# four tensors of 12 MB made together and freed, as a training step's activations are, ten times a
# round; the fewest minor page faults of a round, over three rounds after three to warm up (a
# kernel that reclaims idle pages, as DAMON does on some VMs, can fault a round's pages in anew). glibc's
# defaults move the mmap and trim thresholds with the sizes freed, which makes the faults of an
# untuned process depend on where small blocks happened to land; the probes pin the mmap threshold
# at its default 128 KiB (GLIBC_TUNABLES, read at start), so that untuned every 12 MB block is
# mapped and faulted in anew (3,072 pages) — and tune_malloc's mallopt must override it. The probe
# turns transparent huge pages off for itself (prctl PR_SET_THP_DISABLE), so that a host whose THP
# mode is "always" still counts 4 KiB pages.
_PROBE = """
import ctypes, json, resource, sys
ctypes.CDLL("libc.so.6").prctl(41, 1, 0, 0, 0)
import torch
from semiasr.malloc import malloc_state, tune_malloc
tuned = tune_malloc() if sys.argv[1] == "tune" else None
again = tune_malloc() if sys.argv[1] == "tune" else None
def rounds():
    for _ in range(10):
        held = [torch.ones(3 << 20) for _ in range(4)]
        float(sum(float(t.sum()) for t in held))
for _ in range(3):
    rounds()
counts = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    rounds()
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
faults = min(counts)
print(json.dumps({"tuned": tuned, "again": again, "state": malloc_state(), "faults": faults}))
"""


def _probe(arg: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()) -> dict:
    """The probe's result in a fresh interpreter: this one's environment less ``unset``, plus
    ``env``, with the mmap threshold pinned (last, so no caller's GLIBC_TUNABLES replaces it)."""
    base = {k: v for k, v in os.environ.items() if k not in unset}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, arg],
        capture_output=True,
        text=True,
        env={**base, **(env or {}), "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


@glibc
@pytest.mark.parametrize("value", ["tuned", None])
def test_tuned_malloc_reuses_freed_blocks_without_page_faults(value: str | None) -> None:
    """Tuned by default, or when asked; untuned (never called) the pinned threshold faults."""
    plain = _probe("plain")
    env = {"SEMIASR_MALLOC": value} if value is not None else None
    tuned = _probe("tune", env, unset=("SEMIASR_MALLOC",))
    assert plain["state"] == "system (not asked)" and plain["faults"] >= 40 * 3072
    assert tuned["tuned"] is True and tuned["again"] is True and tuned["state"] == "tuned"
    assert tuned["faults"] <= 3072  # at most one block's pages, where the heap had to grow


@glibc
def test_semiasr_malloc_system_keeps_glibcs_defaults() -> None:
    kept = _probe("tune", {"SEMIASR_MALLOC": "system"})
    assert kept["tuned"] is False and kept["state"] == "system (SEMIASR_MALLOC=system)"
    assert kept["faults"] >= 40 * 3072


def test_a_bad_semiasr_malloc_is_refused_with_its_value(monkeypatch) -> None:
    from semiasr import malloc

    monkeypatch.setenv("SEMIASR_MALLOC", "jemalloc")
    monkeypatch.setattr(malloc, "_state", None)
    with pytest.raises(
        ValueError, match="SEMIASR_MALLOC must be 'tuned' or 'system', got 'jemalloc'"
    ):
        malloc.tune_malloc()
    assert malloc.malloc_state() == "system (not asked)"


def test_the_semiasr_command_reports_its_malloc() -> None:
    env = {**os.environ, "SEMIASR_MALLOC": "system"}
    out = subprocess.run(
        [sys.executable, "-m", "semiasr", "info"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "malloc system (SEMIASR_MALLOC=system)" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "semiasr", "info"],
        capture_output=True,
        text=True,
        env={**os.environ, "SEMIASR_MALLOC": "jemalloc"},
    )
    assert bad.returncode == 2 and "SEMIASR_MALLOC must be" in bad.stderr
