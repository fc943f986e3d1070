"""Progress reporting: events from the pipeline, and their display.

The pipeline knows nothing about terminals: it calls an `on_progress(event)` callback.
`ProgressDisplay` turns those events into a live rich view (one bar per file plus an
overall bar) or, when stdout is not a terminal, into plain log lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProgressEvent:
    """How far one file has come."""

    path: Path
    frames_done: int
    frames_total: int | None
    elapsed: float
    # "start", "frames" (regular updates), "iteration" (inside one Gatys frame), "done".
    kind: str = "frames"
    iteration: int | None = None
    iterations_total: int | None = None
    loss: float | None = None

    @property
    def fps(self) -> float:
        return self.frames_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if not self.frames_total or self.frames_done == 0:
            return None
        return max(self.frames_total - self.frames_done, 0) / self.fps


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class Throttle:
    """Lets an event through at most every `interval` seconds (and always the last one)."""

    interval: float = 0.25
    _last: float = field(default=0.0, repr=False)

    def ready(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self._last >= self.interval:
            self._last = now
            return True
        return False
