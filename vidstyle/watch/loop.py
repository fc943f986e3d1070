"""The watch loop: scan the inbox, queue settled videos in the ledger, claim and run jobs.

One pass of the loop:

    recover stale jobs  ->  scan (settle, open-for-write, hash, probe)  ->  add jobs
        ->  claim one job  ->  run_claimed_job()  ->  record the outcome  ->  move input

The loop owns the ledger and the order of things; one job's run is in `jobs.py`, what
jobs leave on disk in `outputs.py`, and the threads that wake or stop the loop in
`signals.py`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vidstyle.api import default_output_path
from vidstyle.config import Settings
from vidstyle.errors import VidstyleError
from vidstyle.files import content_hash
from vidstyle.media.probe import written_by_vidstyle
from vidstyle.progress import ProgressEvent
from vidstyle.watch.jobs import (
    JobOutcome,
    ProcessFunction,
    default_process,
    job_settings,
    run_claimed_job,
)
from vidstyle.watch.ledger import POINTER_NAME, STATE_FOLDER, JobRecord, Ledger, current_owner
from vidstyle.watch.outputs import (
    move_into,
    output_completed,
    remove_partial_outputs,
    sweep_stale_temps,
)
from vidstyle.watch.scan import (
    FileStat,
    SettleTracker,
    find_videos,
    open_for_writing,
    probe_error,
    stat_of,
)
from vidstyle.watch.signals import POLL_SECONDS, ChangeSignal, Heartbeat

log = logging.getLogger(__name__)

# A claim lasts this long without a heartbeat. Only watchers on *other* hosts wait for it
# (a dead owner on this host is seen at once from its pid), so it can be generous.
LEASE_SECONDS = 60.0
# With OS events, rescan anyway this often: events can be dropped (inotify queue
# overflow) and other hosts' stale jobs need looking at.
IDLE_RESCAN_SECONDS = 10.0


@dataclass(frozen=True)
class WatchEvent:
    """What the loop tells `on_event`: kind is one of queued, started, progress, done,
    failed, requeued, recovered, moved, skipped, idle, stopping."""

    kind: str
    job: JobRecord | None = None
    progress: ProgressEvent | None = None
    message: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    queue: list[JobRecord] = field(default_factory=list)


@dataclass
class WatchSummary:
    """What one `watch_folder` call did."""

    done: int = 0
    failed: int = 0
    requeued: int = 0
    recovered: int = 0
    seconds: float = 0.0
    stopped: bool = False  # ended by a signal or the stop event (not --once running dry)

    def to_dict(self) -> dict:
        return {**self.__dict__, "seconds": round(self.seconds, 3)}


@dataclass
class WatchOptions:
    inbox: Path
    out: Path
    styles: list[str]
    settings: Settings
    state_dir: Path | None = None
    once: bool = False
    settle: float = 2.0
    poll: bool = False
    retry_failed: bool = False
    move_done: Path | None = None
    move_failed: Path | None = None
    lease_seconds: float = LEASE_SECONDS
    # Also stylize files vidstyle wrote (skipped by default: an output folder inside the
    # inbox would otherwise feed the watcher its own outputs, generation after generation).
    include_outputs: bool = False


class Watcher:
    """One watch session on one inbox; `run()` until stopped (or dry, with `once`)."""

    def __init__(
        self,
        options: WatchOptions,
        *,
        process: ProcessFunction = default_process,
        on_event: Callable[[WatchEvent], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.options = options
        self.inbox = options.inbox.absolute()
        self.out = options.out.absolute()
        self.state_dir = (options.state_dir or self.out / STATE_FOLDER).absolute()
        self.process = process
        self.on_event = on_event or (lambda event: None)
        self.stop = stop or threading.Event()
        self.owner = current_owner()
        self.settings_by_fingerprint = {}
        self.style_settings: list[tuple[str, Settings]] = []
        for style in dict.fromkeys(options.styles or [options.settings.style]):
            settings = job_settings(options.settings, style)
            self.style_settings.append((style, settings))
            self.settings_by_fingerprint[settings.fingerprint()] = settings
        self.tracker = SettleTracker(options.settle)
        self.handled: dict[Path, FileStat] = {}
        self.warned: set[tuple[Path, str]] = set()
        self.waiting_on: list[Path] = []
        self.summary = WatchSummary()
        self.ledger: Ledger | None = None

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> WatchSummary:
        started = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger.in_folder(self.state_dir)
        self._leave_pointer()
        changes = ChangeSignal(self.inbox, poll=self.options.poll)
        heartbeat = Heartbeat(self.ledger.path, self.owner, self.options.lease_seconds)
        try:
            self.recover_stale()
            sweep_stale_temps(self.out, self.options.lease_seconds)
            if self.options.retry_failed:
                n = self.ledger.requeue_failed(self.settings_by_fingerprint)
                self._emit("requeued", message=f"{n} failed job(s) queued again")
            changes.start()
            heartbeat.start()
            self._loop(changes)
        finally:
            heartbeat.close()
            changes.close()
            self.ledger.close()
        self.summary.seconds = time.monotonic() - started
        self.summary.stopped = self.stop.is_set()
        return self.summary

    def _loop(self, changes: ChangeSignal) -> None:
        last_recovery = time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - last_recovery > self.options.lease_seconds / 2:
                self.recover_stale()
                last_recovery = time.monotonic()
            self.scan()
            if self.run_next_job():
                continue
            if self.options.once and not self.waiting_on:
                return
            self._emit("idle", message=f"waiting on {len(self.waiting_on)} file(s)")
            self._wait(changes)

    def _wait(self, changes: ChangeSignal) -> None:
        if self.waiting_on:  # a file is settling: look again soon
            timeout = max(0.05, min(1.0, self.options.settle / 4))
        elif changes.events:
            timeout = IDLE_RESCAN_SECONDS
        else:
            timeout = POLL_SECONDS
        changes.wait(timeout, self.stop)

    # -- scanning --------------------------------------------------------------------------

    def scan(self) -> None:
        """Find settled, closed files and queue a job per style for each new version."""
        excluded = [self.out, self.state_dir, self.options.move_done, self.options.move_failed]
        skipped: list[tuple[Path, str]] = []
        paths = find_videos(self.inbox, [p for p in excluded if p is not None], skipped)
        for path, reason in skipped:
            if (path, reason) not in self.warned:  # once, not on every scan
                self.warned.add((path, reason))
                log.warning("%s: skipped: %s", path, reason)
                self._emit("skipped", message=f"{path}: {reason}")
        settled, moving = self.tracker.observe(paths)
        fresh = [(path, stat) for path, stat in settled if self.handled.get(path) != stat]
        busy = open_for_writing(path for path, _ in fresh)
        for path in busy:
            self.tracker.restart(path)
        self.waiting_on = moving + sorted(busy)
        for path, stat in fresh:
            if path not in busy and self._register(path, stat):
                self.handled[path] = stat
        self.handled = {p: s for p, s in self.handled.items() if p.exists()}

    def _register(self, path: Path, stat: FileStat) -> bool:
        """Add the jobs for one settled file; False if it changed or vanished meanwhile."""
        key = str(path)
        if not self.options.include_outputs and written_by_vidstyle(path):
            self._emit("skipped", message=f"{path}: an output of vidstyle, not an input")
            return True
        digest = self.ledger.known_hash(key, stat.size, stat.mtime_ns)
        if digest is None:
            try:
                digest = content_hash(path, stop=self.stop.is_set)
            except (OSError, VidstyleError):  # gone, replaced by a FIFO, or stopping
                return False
            if stat_of(path) != stat:  # written to while we read it: settle again
                return False
        missing = [
            (style, settings) for style, settings in self.style_settings
            if not self.ledger.has_job(key, digest, settings.fingerprint())
        ]
        if not missing:
            return True
        error = probe_error(path)
        for style, settings in missing:
            job = self.ledger.add_job(
                input=key, size=stat.size, mtime_ns=stat.mtime_ns, content_hash=digest,
                style=style, settings=settings, output=str(self.output_path(path, style)),
                error=error,
            )
            if job is not None:
                self._emit("failed" if error else "queued", job, message=error or "")
                if error:
                    self.summary.failed += 1
        if error:
            self._move_if_finished(key, digest)
        return True

    def output_path(self, src: Path, style: str) -> Path:
        """out/<same subfolder as in the inbox>/<stem>.<style><ext>."""
        relative = src.relative_to(self.inbox)
        return default_output_path(src, style, self.out / relative.parent)

    # -- running ---------------------------------------------------------------------------

    def run_next_job(self) -> bool:
        """Claim and run one job; False if none of ours is queued."""
        job = self.ledger.claim(
            self.owner, self.settings_by_fingerprint, self.options.lease_seconds
        )
        if job is None:
            return False
        self._emit("started", job)
        settings = self.settings_by_fingerprint[job.fingerprint]

        def on_progress(event: ProgressEvent) -> None:
            self.on_event(WatchEvent("progress", job, progress=event))

        try:
            outcome = run_claimed_job(
                job, settings, process=self.process, on_progress=on_progress, cancel=self.stop
            )
        except BaseException:  # KeyboardInterrupt: give the job back before unwinding
            self.ledger.release(job.id, self.owner, note="interrupted")
            raise
        self.record(job, outcome)
        return True

    def record(self, job: JobRecord, outcome: JobOutcome) -> None:
        """Write one outcome to the ledger (only if we still own the job)."""
        if outcome.state == "done":
            owned = self.ledger.complete(
                job.id, self.owner, frames=outcome.frames, seconds=outcome.seconds
            )
            self.summary.done += owned
        elif outcome.state == "failed":
            owned = self.ledger.fail(job.id, self.owner, outcome.error, seconds=outcome.seconds)
            self.summary.failed += owned
        else:
            owned = self.ledger.release(job.id, self.owner, note="cancelled")
            self.summary.requeued += owned
        if not owned:
            log.warning("%s: lost the lease while running; another watcher took it over",
                        job.src)
            return
        kind = {"done": "done", "failed": "failed", "cancelled": "requeued"}[outcome.state]
        self._emit(kind, self.ledger.job(job.id), message=outcome.error or "")
        if outcome.state != "cancelled":
            self._move_if_finished(job.input, job.content_hash)

    # -- recovery --------------------------------------------------------------------------

    def recover_stale(self) -> None:
        """Jobs whose owner died: done if their output was completed (the process died
        between rename and ledger update), else back to the queue without leftovers."""
        for job in self.ledger.stale_jobs():
            if output_completed(job):
                won = self.ledger.complete(
                    job.id, job.owner, frames=None, seconds=None,
                    note="recovered: output was complete when its owner died",
                )
            else:
                remove_partial_outputs(job)
                won = self.ledger.release(job.id, job.owner, note="requeued: owner died")
            if won:
                self.summary.recovered += 1
                self._emit("recovered", self.ledger.job(job.id))

    # -- moving inputs ---------------------------------------------------------------------

    def _move_if_finished(self, input: str, digest: str) -> None:
        """Once every style of this input has ended, move it to --move-done or
        --move-failed (with an .error.txt beside it)."""
        done_dir, failed_dir = self.options.move_done, self.options.move_failed
        if done_dir is None and failed_dir is None:
            return
        jobs = [j for j in self.ledger.jobs_for_file(input, digest)
                if j.fingerprint in self.settings_by_fingerprint]
        if len(jobs) < len(self.style_settings) or any(
            j.state in ("queued", "running") for j in jobs
        ):
            return
        errors = [j.error for j in jobs if j.state == "failed"]
        target = failed_dir if errors else done_dir
        if target is None:
            return
        src = Path(input)
        try:
            moved = move_into(src, Path(target) / src.relative_to(self.inbox).parent)
        except FileNotFoundError:  # another watcher moved it first
            return
        if errors:
            moved.with_name(moved.name + ".error.txt").write_text("\n".join(errors) + "\n")
        self.ledger.set_moved(input, digest, str(moved))
        self._emit("moved", message=f"{src} -> {moved}")

    # -- helpers ---------------------------------------------------------------------------

    def _leave_pointer(self) -> None:
        with contextlib.suppress(OSError):  # a read-only inbox still works
            (self.inbox / POINTER_NAME).write_text(f"{self.state_dir}\n")

    def _emit(self, kind: str, job: JobRecord | None = None, message: str = "") -> None:
        self.on_event(WatchEvent(
            kind, job, message=message, counts=self.ledger.counts(),
            queue=self.ledger.jobs(["queued"], limit=5),
        ))
