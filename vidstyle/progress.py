"""Progress reporting: events from the pipeline, and their display.

The pipeline knows nothing about terminals: it calls an `on_progress(event)` callback.
`ProgressDisplay` turns those events into a live rich view (one bar per file plus an
overall bar) or, when stderr is not a terminal, into plain log lines.
"""

from __future__ import annotations

import math
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


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class Throttle:
    """Lets an event through at most every `interval` seconds; the first one always, and
    any that is forced (the last one)."""

    interval: float = 0.25
    _last: float | None = field(default=None, repr=False)

    def ready(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or self._last is None or now - self._last >= self.interval:
            self._last = now
            return True
        return False


# Time constant of the ETA's moving average of the frame rate, in seconds. Updates come
# about every 0.25 s (`Throttle`) and carry whole batches, so the instantaneous rate
# swings between 0 and several times the mean. rich's own column re-estimates from a
# window of those raw samples, and its ETA jumped (7:32, 7:49, 6:42, 7:14 within a minute,
# issue 17); the whole-run average is steady but trails a lasting change to the end of
# the run. Averaging over ~20 s (about 80 updates) smooths out the batch granularity,
# and a lasting change of speed, such as another job starting on a shared machine,
# still shows fully within a minute (95 % after 3 time constants).
RATE_TIME_CONSTANT = 20.0


@dataclass
class SmoothedRate:
    """Frames per second as an exponential moving average over time.

    Each new sample weighs 1 - exp(-dt / time_constant), so the average depends on how
    much time has passed, not on how often updates arrive.
    """

    time_constant: float = RATE_TIME_CONSTANT
    rate: float | None = None
    _last: tuple[float, int] | None = field(default=None, repr=False)

    def update(self, elapsed: float, frames: int) -> float | None:
        if self._last is None or frames < self._last[1]:  # first sample, or a restart
            self._last = (elapsed, frames)
            return self.rate
        dt = elapsed - self._last[0]
        if dt <= 0:
            return self.rate
        instant = (frames - self._last[1]) / dt
        weight = 1.0 - math.exp(-dt / self.time_constant)
        self.rate = instant if self.rate is None else self.rate + weight * (instant - self.rate)
        self._last = (elapsed, frames)
        return self.rate

    def eta(self, frames_left: int) -> float | None:
        """Seconds until `frames_left` more frames are done, or None while unknown."""
        if not self.rate:
            return None
        return max(frames_left, 0) / self.rate


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class ProgressDisplay:
    """Live progress for a batch of files: a bar per running file, one overall.

    On a terminal it is a rich live display; a finished file's bar gives way to the lines
    `file_finished` is given, and when the display closes nothing of it is left on
    screen but those lines. Elsewhere (a log file, CI, a pipe) it prints a plain line
    when a file starts, every `log_interval` seconds, and the finished-file lines.
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
        self._rates: dict[Path, SmoothedRate] = {}
        self._overall = None

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}", justify="left"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[eta]}"),
                console=self.console,
                transient=True,  # gone when the run ends; the per-file lines remain
            )
            self._progress.__enter__()
            if self.total_files > 1:
                self._overall = self._progress.add_task(
                    "all files", total=self.total_files, rate="", eta=""
                )
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    def __call__(self, event: ProgressEvent) -> None:
        rate = self._rates.setdefault(event.path, SmoothedRate())
        rate.update(event.elapsed, event.frames_done)
        eta = None
        if event.frames_total is not None:
            eta = rate.eta(event.frames_total - event.frames_done)
        if self._progress is not None:
            self._update_live(event, eta)
        else:
            self._log(event, eta)

    def _update_live(self, event: ProgressEvent, eta: float | None) -> None:
        task = self._tasks.get(event.path)
        if task is None:
            task = self._progress.add_task(event.path.name, total=event.frames_total,
                                           rate="", eta="")
            self._tasks[event.path] = task
        rate = f"{event.fps:5.1f} fps"
        if event.iteration is not None:
            rate += f"  it {event.iteration}/{event.iterations_total}"
        # The total is an estimate from the container until the file is done; the "done"
        # event carries the true count, so the bar ends full at the frames really written.
        self._progress.update(
            task, completed=event.frames_done, total=event.frames_total, rate=rate,
            eta="" if event.kind == "done" else f"ETA {format_eta(eta)}",
        )

    def _log(self, event: ProgressEvent, eta: float | None) -> None:
        if event.kind == "start":
            self.console.print(f"{event.path}: starting ({event.frames_total} frames)",
                               highlight=False)
        elif event.kind != "done" and self._log_throttle.ready():
            tail = "" if eta is None else f", ETA {format_eta(eta)}"
            self.console.print(
                f"{event.path}: {event.frames_done}/{event.frames_total} frames, "
                f"{event.fps:.1f} fps{tail}",
                highlight=False,
            )

    def file_finished(self, path: Path, *lines: str) -> None:
        """`path` is done (or failed): its bar goes, `lines` (rich markup) are printed
        above the live display, or plainly without one."""
        self.files_done += 1
        self._rates.pop(path, None)
        if self._progress is not None:
            task = self._tasks.pop(path, None)
            if task is not None:
                self._progress.remove_task(task)
            if self._overall is not None:
                self._progress.update(self._overall, completed=self.files_done)
        for line in lines:
            self.console.print(line, highlight=False, soft_wrap=True)
