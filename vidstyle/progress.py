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


class ProgressDisplay:
    """Live progress for a batch of files: a bar per file and one overall.

    On a terminal it is a rich live display; otherwise (a log file, CI, a pipe) it
    prints a plain line every `log_interval` seconds and when a file finishes.
    """

    def __init__(self, total_files: int, *, console=None, live: bool = True,
                 log_interval: float = 5.0) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.live = live and self.console.is_terminal
        self.total_files = total_files
        self.files_done = 0
        self._log_throttle = Throttle(log_interval)
        self._progress = None
        self._tasks: dict[Path, int] = {}
        self._overall = None

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}", justify="left"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.__enter__()
            if self.total_files > 1:
                self._overall = self._progress.add_task(
                    "all files", total=self.total_files, rate=""
                )
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def __call__(self, event: ProgressEvent) -> None:
        if self._progress is not None:
            self._update_live(event)
        else:
            self._log(event)

    def _update_live(self, event: ProgressEvent) -> None:
        task = self._tasks.get(event.path)
        if task is None:
            task = self._progress.add_task(event.path.name, total=event.frames_total, rate="")
            self._tasks[event.path] = task
        rate = f"{event.fps:5.1f} fps"
        if event.iteration is not None:
            rate += f"  it {event.iteration}/{event.iterations_total}"
        self._progress.update(
            task, completed=event.frames_done, total=event.frames_total, rate=rate
        )

    def _log(self, event: ProgressEvent) -> None:
        if event.kind == "start":
            self.console.print(f"{event.path}: starting ({event.frames_total} frames)")
        elif event.kind == "done" or self._log_throttle.ready():
            eta = "" if event.eta is None else f", ETA {event.eta:.0f} s"
            self.console.print(
                f"{event.path}: {event.frames_done}/{event.frames_total} frames, "
                f"{event.fps:.1f} fps{eta if event.kind != 'done' else ''}",
                highlight=False,
            )

    def file_finished(self, path: Path, ok: bool, message: str = "") -> None:
        self.files_done += 1
        if self._overall is not None:
            self._progress.update(self._overall, completed=self.files_done)
        if not ok and self._progress is not None and path in self._tasks:
            self._progress.update(self._tasks[path], description=f"[red]{path.name}")
