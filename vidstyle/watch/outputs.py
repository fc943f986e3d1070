"""What a watch job leaves on disk: completed or partial outputs of dead owners, stale
temporaries, and inputs moved aside once all their jobs have ended."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

from vidstyle.files import file_signature, pid_alive, temp_files, temp_pid
from vidstyle.watch.ledger import JobRecord, owner_alive, parse_owner
from vidstyle.watch.scan import probe_error


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
