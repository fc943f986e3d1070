"""How a watch session and a ledger look on screen: a live rich view, plain log lines,
and the status table. Only formatting here; the loop reports through `WatchEvent`s."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from vidstyle.progress import SmoothedRate, format_eta
from vidstyle.watch.ledger import STATES, JobRecord
from vidstyle.watch.loop import WatchEvent

STATE_COLOURS = {"queued": "cyan", "running": "yellow", "done": "green", "failed": "red"}


class WatchDisplay:
    """`on_event` for `watch_folder`: on a terminal a live view of the current job
    (frames, fps, ETA) and the queue; otherwise one line per job event."""

    def __init__(self, console: Console, *, live: bool = True) -> None:
        self.console = console
        self.live = live and console.is_terminal
        self.current: WatchEvent | None = None
        self.last: WatchEvent | None = None
        self.finished: list[JobRecord] = []
        self._live: Live | None = None
        # The current job's rate, smoothed like `vidstyle apply`'s (progress.SmoothedRate).
        self._rate = SmoothedRate()
        self._rate_path: Path | None = None

    def __enter__(self) -> WatchDisplay:
        if self.live:
            self._live = Live(self.render(), console=self.console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def __call__(self, event: WatchEvent) -> None:
        if event.kind == "progress":
            self.current = event
        else:
            self.last = event
            if event.kind == "started":
                self.current = event
            elif event.kind in ("done", "failed", "requeued") and event.job is not None:
                self.current = None
                self.finished = ([event.job] + self.finished)[:5]
        if self._live is not None:
            self._live.update(self.render())
        elif event.kind not in ("progress", "idle"):
            self.console.print(plain_line(event), highlight=False, soft_wrap=True)

    def render(self) -> Group:
        parts = [self._current_job(), self._queue()]
        return Group(*[p for p in parts if p is not None])

    def _current_job(self):
        event = self.current
        if event is None or event.job is None:
            return Text("idle: waiting for new files", style="dim")
        job, progress = event.job, event.progress
        title = Text.assemble(
            ("▶ ", "yellow"), (Path(job.input).name, "bold"), f"  [{job.style}]"
        )
        if progress is None:
            return Group(title, Text("starting...", style="dim"))
        total = progress.frames_total or 0
        if self._rate_path != progress.path:  # a new job: its own average
            self._rate, self._rate_path = SmoothedRate(), progress.path
        self._rate.update(progress.elapsed, progress.frames_done)
        eta = self._rate.eta(total - progress.frames_done) if total else None
        numbers = (f"{progress.frames_done}/{total or '?'} frames  {progress.fps:.1f} fps"
                   + (f"  ETA {format_eta(eta)}" if eta is not None else ""))
        bar = ProgressBar(total=max(total, 1), completed=progress.frames_done, width=40)
        return Group(title, bar, Text(numbers))

    def _queue(self):
        event = self.last
        if event is None:
            return None
        counts = "  ".join(
            f"[{STATE_COLOURS[s]}]{s} {event.counts.get(s, 0)}[/]" for s in STATES
        )
        lines = [Text.from_markup(counts)]
        for job in event.queue:
            lines.append(Text(f"  next: {Path(job.input).name} [{job.style}]", style="dim"))
        for job in self.finished:
            colour = STATE_COLOURS.get(job.state, "white")
            tail = f"  {job.error}" if job.error else ""
            lines.append(Text(f"  {job.state}: {Path(job.input).name} [{job.style}]{tail}",
                              style=colour))
        return Group(*lines)


def plain_line(event: WatchEvent) -> str:
    """One log line for a non-terminal display."""
    job = event.job
    if job is None:
        return f"{event.kind}: {event.message}"
    head = f"{event.kind}: {job.input} [{job.style}]"
    if event.kind == "done":
        frames = f"{job.frames} frames, " if job.frames is not None else ""
        return f"{head} -> {job.output} ({frames}{job.seconds or 0:.1f} s)"
    if event.message:
        return f"{head}: {event.message}"
    return head


def status_table(jobs: list[JobRecord]) -> Table:
    """The ledger as a table: state, input, style, output, when, how long, error."""
    table = Table(show_edge=False, pad_edge=False)
    for column in ("id", "state", "input", "style", "finished", "time", "error / note"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        colour = STATE_COLOURS.get(job.state, "white")
        table.add_row(
            str(job.id),
            f"[{colour}]{job.state}[/]",
            job.input,
            job.style,
            _clock(job.finished_at or job.started_at or job.created_at),
            f"{job.seconds:.1f} s" if job.seconds is not None else "",
            job.error or job.note or "",
        )
    return table


def _clock(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else ""
