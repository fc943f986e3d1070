"""One watch job, start to outcome, without the ledger.

`run_claimed_job(job, settings)` knows nothing about the ledger, so an executor elsewhere
(a Ray task, a process pool) can run it and hand the outcome back: the watcher that
claimed the job records it, and the ledger stays the single source of truth.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vidstyle import api
from vidstyle.config import Settings
from vidstyle.errors import Cancelled, OutputError, VidstyleError
from vidstyle.files import flush_to_disk
from vidstyle.progress import ProgressCallback
from vidstyle.watch.ledger import JobRecord

log = logging.getLogger(__name__)


class ProcessFunction(Protocol):
    """What runs one job: `vidstyle.stylize_video` or anything with its shape. It must
    write `dst` atomically and raise `Cancelled` (leaving nothing) when `cancel` is set."""

    def __call__(self, src: Path, dst: Path, settings: Settings, *,
                 on_progress: ProgressCallback | None,
                 cancel: threading.Event | None) -> Any: ...


def default_process(src: Path, dst: Path, settings: Settings, *,
                    on_progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> Any:
    # Looked up on the module at call time, so a wrapper installed on
    # `vidstyle.api.stylize_video` (the watch tests' worker processes) is the one called.
    return api.stylize_video(src, dst, settings, on_progress=on_progress, cancel=cancel)


@dataclass(frozen=True)
class JobOutcome:
    """How one run of a job ended: "done", "failed" (with the one-line error) or
    "cancelled" (nothing written; the job goes back to the queue)."""

    state: str
    seconds: float
    frames: int | None = None
    error: str | None = None


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
