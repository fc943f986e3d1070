"""The watch loop: scan the inbox, queue settled videos in the ledger, claim and run jobs.

One pass of the loop:

    recover stale jobs  ->  scan (settle, open-for-write, hash, probe)  ->  add jobs
        ->  claim one job  ->  run_claimed_job()  ->  record the outcome  ->  move input

`run_claimed_job(job, settings)` knows nothing about the ledger, so an executor elsewhere
(a Ray task, a process pool) can run it and hand the outcome back: the watcher that
claimed the job records it, and the ledger stays the single source of truth.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidstyle.api import default_output_path
from vidstyle.config import Settings
from vidstyle.errors import Cancelled, OutputError, VidstyleError
from vidstyle.files import (
    content_hash,
    file_signature,
    flush_to_disk,
    pid_alive,
    temp_files,
    temp_pid,
)
from vidstyle.progress import ProgressCallback, ProgressEvent
from vidstyle.watch.ledger import (
    POINTER_NAME,
    STATE_FOLDER,
    JobRecord,
    Ledger,
    current_owner,
    owner_alive,
    parse_owner,
)
from vidstyle.watch.scan import (
    FileStat,
    SettleTracker,
    find_videos,
    open_for_writing,
    probe_error,
    stat_of,
)

log = logging.getLogger(__name__)

# A claim lasts this long without a heartbeat. Only watchers on *other* hosts wait for it
# (a dead owner on this host is seen at once from its pid), so it can be generous.
LEASE_SECONDS = 60.0
# Heartbeats per lease: three missed beats in a row before anyone may take the job over.
HEARTBEATS_PER_LEASE = 4
# With OS events, rescan anyway this often: events can be dropped (inotify queue
# overflow) and other hosts' stale jobs need looking at.
IDLE_RESCAN_SECONDS = 10.0
# --poll (network filesystems, where inotify sees nothing written by other machines).
POLL_SECONDS = 1.0
# watchfiles groups bursts of events for this long; a copy in progress fires thousands.
EVENT_DEBOUNCE_MS = 200


class ProcessFunction(Protocol):
    """What runs one job: `vidstyle.stylize_video` or anything with its shape. It must
    write `dst` atomically and raise `Cancelled` (leaving nothing) when `cancel` is set."""

    def __call__(self, src: Path, dst: Path, settings: Settings, *,
                 on_progress: ProgressCallback | None,
                 cancel: threading.Event | None) -> Any: ...


def default_process(src: Path, dst: Path, settings: Settings, *,
                    on_progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> Any:
    from vidstyle.api import stylize_video

    return stylize_video(src, dst, settings, on_progress=on_progress, cancel=cancel)


@dataclass(frozen=True)
class JobOutcome:
    """How one run of a job ended: "done", "failed" (with the one-line error) or
    "cancelled" (nothing written; the job goes back to the queue)."""

    state: str
    seconds: float
    frames: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class WatchEvent:
    """What the loop tells `on_event`: kind is one of queued, started, progress, done,
    failed, requeued, recovered, moved, idle, stopping."""

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


def run_claimed_job(
    job: JobRecord,
    settings: Settings,
    *,
    process: ProcessFunction = default_process,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> JobOutcome:
    """Run one claimed job to its outcome; never touches the ledger.

    A `VidstyleError` (a bad file) becomes a failed outcome with its message; any other
    exception too, logged with its traceback, so that one bug on one file does not stop
    the queue. The output is flushed to disk before "done" is returned: the ledger must
    never say done for an output a power cut could still lose.
    """
    started = time.monotonic()

    def outcome(state: str, **extra) -> JobOutcome:
        return JobOutcome(state, time.monotonic() - started, **extra)

    try:
        job.dst.parent.mkdir(parents=True, exist_ok=True)
        result = process(job.src, job.dst, settings, on_progress=on_progress, cancel=cancel)
        if not job.dst.is_file():
            raise OutputError(job.dst, "the job ended without writing its output")
        flush_to_disk(job.dst)
        flush_to_disk(job.dst.parent)
    except Cancelled:
        return outcome("cancelled")
    except VidstyleError as exc:
        return outcome("failed", error=str(exc))
    except Exception as exc:  # a bug, but one file must not stop the queue
        log.exception("unexpected error on %s", job.src)
        return outcome("failed", error=f"{job.src}: unexpected error ({type(exc).__name__}: "
                                       f"{exc})")
    return outcome("done", frames=getattr(result, "frames", None))


def job_settings(settings: Settings, style: str) -> Settings:
    """The settings of one style's jobs. Outputs are replaced when a changed input is
    processed again (overwrite is not part of the fingerprint)."""
    return settings.replace(style=style, output={"overwrite": True}).validate()


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
        paths = find_videos(self.inbox, [p for p in excluded if p is not None])
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
        digest = self.ledger.known_hash(key, stat.size, stat.mtime_ns)
        if digest is None:
            try:
                digest = content_hash(path)
            except OSError:
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


def output_completed(job: JobRecord) -> bool:
    """A file was renamed onto the job's output after it was claimed, and it is a video."""
    signature = file_signature(job.dst)
    return (
        signature is not None
        and signature != job.prior_output
        and probe_error(job.dst) is None
    )


def remove_partial_outputs(job: JobRecord) -> None:
    """Delete the temp files a dead owner left for this job's output."""
    host_is_here = job.owner is not None and owner_alive(job.owner) is not None
    dead_pid = parse_owner(job.owner)[1] if host_is_here else None
    for temp in temp_files(job.dst.parent, job.dst):
        pid = temp_pid(temp)
        if pid is not None and (pid == dead_pid or not pid_alive(pid)):
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def sweep_stale_temps(out: Path, older_than: float) -> int:
    """Remove temp outputs of processes that are gone. Only temps untouched for
    `older_than` seconds: a pid that is dead here may be alive on another host sharing
    the folder, and a live writer touches its temp file continuously."""
    removed = 0
    now = time.time()
    for temp in temp_files(out):
        pid = temp_pid(temp)
        try:
            age = now - temp.stat().st_mtime
        except FileNotFoundError:
            continue
        if pid is not None and not pid_alive(pid) and age > older_than:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
                removed += 1
    return removed


def move_into(src: Path, folder: Path) -> Path:
    """Move `src` into `folder` without replacing anything there (clip.1.mp4, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / src.name
    n = 0
    while dst.exists():
        n += 1
        dst = folder / f"{src.stem}.{n}{src.suffix}"
    shutil.move(src, dst)
    return dst


class Heartbeat:
    """Renews this owner's leases from a thread, with its own ledger connection."""

    def __init__(self, ledger_path: Path, owner: str, lease_seconds: float) -> None:
        self.ledger_path = ledger_path
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="vidstyle-heartbeat",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _beat(self) -> None:
        with Ledger(self.ledger_path) as ledger:
            while not self._stop.wait(self.lease_seconds / HEARTBEATS_PER_LEASE):
                try:
                    ledger.renew(self.owner, self.lease_seconds)
                except Exception:  # a locked or busy database: try again next beat
                    log.warning("lease renewal failed", exc_info=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class ChangeSignal:
    """Wakes the loop when something changes in the inbox.

    Uses `watchfiles` (inotify/FSEvents/ReadDirectoryChangesW behind a small, maintained
    Rust core, one dependency with no transitive ones) rather than a hand-rolled inotify
    binding or a fixed-rate poll; events only say "look again": the scan is what decides,
    so a dropped event costs latency, never correctness. With `poll` (network shares,
    where the local kernel sees no remote writes) there is no event thread at all.
    """

    def __init__(self, inbox: Path, *, poll: bool) -> None:
        self.inbox = inbox
        self.events = not poll
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.events:
            self._thread = threading.Thread(target=self._listen, name="vidstyle-events",
                                            daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        import watchfiles

        try:
            for _ in watchfiles.watch(
                self.inbox, watch_filter=_not_hidden, debounce=EVENT_DEBOUNCE_MS,
                stop_event=self._stop, raise_interrupt=False, rust_timeout=1000,
            ):
                self._changed.set()
        except Exception:  # no inotify watches left, unsupported filesystem...
            log.warning("file events unavailable; polling every %s s", POLL_SECONDS,
                        exc_info=True)
            self.events = False

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Until a change, `stop`, or `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            if self._changed.wait(min(remaining, 0.1)):
                self._changed.clear()
                return

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _not_hidden(change: Any, path: str) -> bool:
    return not os.path.basename(path).startswith(".")


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event):
    """SIGINT/SIGTERM set `stop` (the running job is cancelled and re-queued); a second
    signal interrupts at once. Handlers are restored afterwards. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
