"""Watch-folder batch mode: stylize every video dropped into a folder, exactly once.

    from vidstyle.watch import watch_folder, folder_status
    summary = watch_folder("inbox", "styled", ["scream", "wave"], settings, once=True)
    for job in folder_status("inbox"):
        print(job.state, job.input, job.error)

The ledger (SQLite, default ``<out>/.vidstyle/ledger.sqlite``) records each input
version (path, size, mtime, blake2b), each settings fingerprint and each job's state, so
that restarts, crashes and several watchers never lose or repeat work. See docs/watch.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from vidstyle.config import Settings
from vidstyle.errors import SettingsError
from vidstyle.watch.jobs import JobOutcome, ProcessFunction, default_process, run_claimed_job
from vidstyle.watch.ledger import JobRecord, Ledger, locate_ledger
from vidstyle.watch.loop import Watcher, WatchEvent, WatchOptions, WatchSummary
from vidstyle.watch.signals import stop_on_signals

__all__ = [
    "JobOutcome",
    "JobRecord",
    "Ledger",
    "ProcessFunction",
    "WatchEvent",
    "WatchSummary",
    "folder_status",
    "run_claimed_job",
    "watch_folder",
]


def watch_folder(
    inbox: str | Path,
    out: str | Path,
    styles: list[str],
    settings: Settings | None = None,
    *,
    state_dir: str | Path | None = None,
    once: bool = False,
    settle: float = 2.0,
    poll: bool = False,
    retry_failed: bool = False,
    move_done: str | Path | None = None,
    move_failed: str | Path | None = None,
    include_outputs: bool = False,
    on_event: Callable[[WatchEvent], None] | None = None,
    stop: threading.Event | None = None,
    process: ProcessFunction = default_process,
) -> WatchSummary:
    """Stylize every video that appears under `inbox` into `out`, once per style.

    A file is taken once its size and mtime have held still for `settle` seconds and no
    process has it open for writing, and only if PyAV finds a video stream in it (else
    its jobs are recorded as failed). Outputs keep the inbox's subfolders and are named
    ``<stem>.<style><ext>``. Runs until `stop` is set (which also cancels the running job
    and re-queues it), or, with `once`, until nothing is left to do. When `stop` is None,
    SIGINT/SIGTERM stop the loop (main thread only): the running job is cancelled,
    re-queued, and the call returns within seconds.

    `process(src, dst, settings, on_progress=..., cancel=...)` runs one job
    (default: `vidstyle.stylize_video`); it must write `dst` atomically.
    Raises `SettingsError` for a missing inbox or bad settings.
    """
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise SettingsError(f"{inbox}: inbox folder not found")
    if settle < 0:
        raise SettingsError(f"settle must not be negative, got {settle}")
    options = WatchOptions(
        inbox=inbox,
        out=Path(out),
        styles=list(styles),
        settings=(settings or Settings()).validate(),
        state_dir=Path(state_dir) if state_dir is not None else None,
        once=once,
        settle=settle,
        poll=poll,
        retry_failed=retry_failed,
        move_done=Path(move_done).absolute() if move_done is not None else None,
        move_failed=Path(move_failed).absolute() if move_failed is not None else None,
        include_outputs=include_outputs,
    )
    if stop is not None:
        return Watcher(options, process=process, on_event=on_event, stop=stop).run()
    stop = threading.Event()
    with stop_on_signals(stop):
        return Watcher(options, process=process, on_event=on_event, stop=stop).run()


def folder_status(inbox_or_state: str | Path) -> list[JobRecord]:
    """Every job in the ledger, oldest first. Accepts the inbox (found through the
    pointer file the watcher leaves there), the output folder, the state folder or the
    ledger file itself; raises `SettingsError` if none holds a ledger."""
    with Ledger(locate_ledger(inbox_or_state)) as ledger:
        return ledger.jobs()
