"""Progress reporting: throughput (audio seconds per second, or items per second) and a rich bar.

Audio seconds of a batch = Σ_b feature_lengths[b] × frame shift (10 ms log-mel frames), summed over
every rank; a batch without ``feature_lengths`` counts items (``len(batch)``) instead.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["ProgressBar", "Throughput", "batch_size_of"]


def batch_size_of(batch: Any, frame_shift_s: float) -> tuple[float, float]:
    """``(audio seconds, items)`` in one batch; audio seconds is 0 when the batch has no lengths."""
    lengths = getattr(batch, "feature_lengths", None)
    audio = float(lengths.sum()) * frame_shift_s if lengths is not None else 0.0
    try:
        items = float(len(batch))
    except TypeError:
        items = 0.0
    return audio, items


class Throughput:
    """Counts audio seconds and items between :meth:`rate` calls and divides by the wall time."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._audio = 0.0
        self._items = 0.0

    def add(self, audio_s: float, items: float) -> None:
        self._audio += audio_s
        self._items += items

    def rate(self) -> dict[str, float]:
        """``{"audio_s_per_s": …}`` when audio was counted, else ``{"items_per_s": …}``; resets."""
        now = time.perf_counter()
        dt = max(now - self._t0, 1e-9)
        out = (
            {"audio_s_per_s": self._audio / dt}
            if self._audio > 0
            else {"items_per_s": self._items / dt}
        )
        self._t0, self._audio, self._items = now, 0.0, 0.0
        return out


class ProgressBar:
    """A rich bar with loss, throughput and ETA; silent when disabled or stdout is not a
    terminal."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True):
        self.enabled = enabled and sys.stdout.isatty()
        self._progress: Progress | None = None
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=sys.stdout),
            transient=False,
        )
        self._task = self._progress.add_task(
            "train", total=total, completed=start, loss="-", speed=""
        )
        self._progress.start()

    def update(
        self, step: int, loss: float | None = None, rate: dict[str, float] | None = None
    ) -> None:
        if self._progress is None:
            return
        fields: dict[str, Any] = {}
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
        if rate:
            if "audio_s_per_s" in rate:
                fields["speed"] = f"{rate['audio_s_per_s']:.1f} audio s/s"
            else:
                fields["speed"] = f"{rate.get('items_per_s', 0.0):.1f} items/s"
        self._progress.update(self._task, completed=step, **fields)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
