"""glibc's malloc told to keep freed memory, for the ``semiasr`` process on Linux.

A CPU training step allocates and frees tensors of a few to tens of MB, in new sizes with each
batch shape. glibc gives such a block back to the kernel when it is freed (``munmap`` above the mmap
threshold, trimming the top of the heap above the trim threshold), and the next step faults its
pages in again, zero-filled: thousands of page faults a step, 8–24 ms of system time on the demo
model (``docs/architecture.md``, "Allocator"). :func:`tune_malloc` sets, with ``mallopt``:

- ``M_MMAP_THRESHOLD`` 32 MiB (the most glibc allows): blocks below it come from the heap, and the
  threshold stops moving with the sizes freed;
- ``M_TRIM_THRESHOLD`` 1 GiB: the top of the heap is given back only when that much is free;
- ``M_TOP_PAD`` 64 MiB: the heap grows in steps of at least that.

Freed blocks are then reused without faults. Measured on the demo model (session 18): 73–95% fewer
page faults; 40-step timings of full fine-tuning 5–9% faster and of the adapter row 0.5–6%
(exploratory); in whole adaptation runs (three per allocator) mean steps 1.2% (full fine-tuning,
within the machine's noise) and 3.7% (the row) faster, and peak resident memory no higher (full
1,417 against 1,436 MiB, the row 934 against 992). So the ``semiasr``
command tunes malloc by default; ``SEMIASR_MALLOC=system`` keeps glibc's defaults. The settings last
for the whole process and cannot be undone, so the library never applies them by itself: the
``semiasr`` command calls :func:`tune_malloc` at start, and so do the benchmarks that time what it
does. Elsewhere than glibc (macOS, musl, Windows) nothing changes. This module imports nothing
heavy, so the command tunes malloc before torch is imported.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["MALLOC_ENV", "malloc_state", "tune_malloc"]

MALLOC_ENV = "SEMIASR_MALLOC"
# mallopt's parameter numbers (glibc's malloc.h) and the values set
_SETTINGS = (
    (-3, 32 << 20, "M_MMAP_THRESHOLD"),
    (-1, 1 << 30, "M_TRIM_THRESHOLD"),
    (-2, 64 << 20, "M_TOP_PAD"),
)

_state: str | None = None  # what tune_malloc did in this process (None: not called)


def malloc_state() -> str:
    """What :func:`tune_malloc` did in this process, in words (for ``semiasr info`` and reports)."""
    return _state or "system (not asked)"


def tune_malloc() -> bool:
    """Apply the settings above (once per process); whether glibc's malloc is now tuned."""
    global _state
    if _state is not None:
        return _state == "tuned"
    given = os.environ.get(MALLOC_ENV, "tuned")
    choice = given.strip().lower()
    if choice not in ("tuned", "system"):
        raise ValueError(f"{MALLOC_ENV} must be 'tuned' or 'system', got {given!r}")
    if choice == "system":
        _state = f"system ({MALLOC_ENV}=system)"
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        _state = "system (not glibc)"
        return False
    mallopt = ctypes.CDLL("libc.so.6").mallopt  # glibc's soname on every Linux architecture
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    failed = [name for param, value, name in _SETTINGS if mallopt(param, value) != 1]
    if not failed:
        _state = "tuned"
    elif len(failed) == len(_SETTINGS):
        _state = f"system (mallopt refused {', '.join(failed)})"
    else:
        _state = f"partly tuned (mallopt refused {', '.join(failed)})"
    return not failed
