"""One progress view of work spread over many workers.

Workers report `ProgressEvent`s for the part they run (a whole file, or one segment of
it). `ClusterProgress` keeps the latest count of every part and hands the display one
event per file: frames done across all its parts, against the file's total, timed from
the moment its first part started, so fps and ETA are the cluster's, not one worker's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

from vidstyle.progress import ProgressCallback, ProgressEvent


@dataclass
class _FileState:
    total: int | None
    done_by_part: dict[Hashable, int] = field(default_factory=dict)
    started: float | None = None
    finished: bool = False

    @property
    def done(self) -> int:
        return sum(self.done_by_part.values())


class ClusterProgress:
    """Aggregates per-part events into per-file events for a `ProgressCallback`."""

    def __init__(
        self, callback: ProgressCallback | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.callback = callback
        self.clock = clock
        self.files: dict[Path, _FileState] = {}

    def expect(self, path: Path, frames_total: int | None) -> None:
        """Announce a file and its total frames (all parts together) before it starts."""
        self.files[path] = _FileState(frames_total)

    def update(self, part: Hashable, event: ProgressEvent) -> None:
        """A worker's event for `part` of file `event.path`."""
        state = self.files.setdefault(event.path, _FileState(event.frames_total))
        if state.finished:
            return  # a late event from a retried attempt
        first = state.started is None
        if first:
            state.started = self.clock()
        # A retried part starts again from zero: its latest count replaces the old one.
        state.done_by_part[part] = event.frames_done
        self._emit(event.path, state, "start" if first else "frames")

    def finish(self, path: Path, frames: int) -> None:
        """The file is complete (joined, renamed): report its final count once."""
        state = self.files.setdefault(path, _FileState(frames))
        if state.started is None:
            state.started = self.clock()
        state.done_by_part = {"all": frames}
        state.total = frames
        self._emit(path, state, "done")
        state.finished = True

    def _emit(self, path: Path, state: _FileState, kind: str) -> None:
        if self.callback is None:
            return
        done = state.done
        total = max(state.total or 0, done) or None
        now = self.clock()
        started = now if state.started is None else state.started
        self.callback(
            ProgressEvent(
                path=path,
                frames_done=done,
                frames_total=total,
                elapsed=now - started,
                kind=kind,
            )
        )
