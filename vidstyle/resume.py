"""Resumable jobs: a long video stylized as journaled segments that survive a crash.

A long input (over `Settings.resume_after` seconds, or any input with `Settings.resume`)
is cut at keyframes into segments of about `Settings.resume_segment` seconds
(`vidstyle.media.segments`), stylized one after another in this process, each into its
own file inside a hidden folder beside the output::

    .clip.scream.mp4.vidstyle-resume/
        journal.sqlite      the job's key, the segment plan, the finished segments
        seg00000.mp4 ...    the finished segments' video, made durable before journaled

After a crash, `kill -9`, a power cut or Ctrl-C, the same command (or a watcher picking
the file up again) finds the journal, keeps the finished segments and goes on with the
next one; every segment starts with the temporal filter warmed up on the frames before it
(`warmup_frames`), whether or not the job was interrupted, so an interrupted job writes
the same frames as an uninterrupted one. The final join remuxes the segments without
re-encoding and muxes the original's audio and other streams once (`join_segments`); the
output appears atomically, then the folder is deleted.

The journal is keyed by the input's identity (size, mtime, a hash of its ends) and the
settings' fingerprint: a changed input or changed settings start the job over, so one
output never mixes two settings. An exclusive lock on the journal keeps a second process
off the same job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from vidstyle.config import Settings
from vidstyle.device import precision_name
from vidstyle.errors import OutputError
from vidstyle.files import NAME_MAX, check_output_path, file_signature
from vidstyle.job import EngineHolder, VideoResult
from vidstyle.media.probe import MediaInfo
from vidstyle.media.segments import Segment, warmup_seconds
from vidstyle.progress import ProgressCallback
from vidstyle.segmented import SegmentsProgress, join, plan, stylize_in_order

RESUME_SUFFIX = ".vidstyle-resume"
JOURNAL_NAME = "journal.sqlite"
LOCK_NAME = "lock"
# Bytes hashed at each end of the input for its identity: enough to tell a re-encode or
# a different take of the same length apart, without reading a two-hour film at start.
IDENTITY_BYTES = 1 << 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS job (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    key      TEXT NOT NULL,      -- input identity + settings fingerprint
    plan     TEXT NOT NULL,      -- the segments, as JSON
    joined   TEXT                -- file signature of the joined output, once written
);
CREATE TABLE IF NOT EXISTS segment (
    idx      INTEGER PRIMARY KEY,
    frames   INTEGER NOT NULL,   -- frames written
    finished REAL NOT NULL       -- unix time
);
"""


def is_resumable(settings: Settings, info: MediaInfo) -> bool:
    """Whether this job runs as journaled segments: always with `resume`, else when the
    part of the video it covers is longer than `resume_after` seconds."""
    if settings.resume:
        return True
    span = max((info.duration or 0.0) - (settings.start or 0.0), 0.0)
    if settings.duration is not None:
        span = min(span, settings.duration)
    return span > settings.resume_after


def resume_folder(dst: Path) -> Path:
    """The hidden folder beside `dst` that holds its journal and finished segments."""
    head = dst.name
    while len(f".{head}{RESUME_SUFFIX}".encode()) > NAME_MAX:
        head = head[:-1]
    return dst.with_name(f".{head}{RESUME_SUFFIX}")


def input_identity(src: Path) -> str:
    """Size, mtime and a hash of the first and last `IDENTITY_BYTES` of `src`: the same
    on every machine that mounts it (unlike a device and inode number)."""
    stat = src.stat()
    digest = hashlib.blake2b(digest_size=16)
    with open(src, "rb") as file:
        digest.update(file.read(IDENTITY_BYTES))
        file.seek(max(stat.st_size - IDENTITY_BYTES, 0))
        digest.update(file.read(IDENTITY_BYTES))
    return f"{stat.st_size}:{stat.st_mtime_ns}:{digest.hexdigest()}"


def job_key(src: Path, settings: Settings) -> str:
    return f"{input_identity(src)}/{settings.fingerprint()}"


class Journal:
    """What is done of one resumable job, in SQLite (durable commits)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        # A commit is on disk before the call returns: the journal must never list a
        # segment a power cut could still take away (the segment file is fsync'd first).
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def key(self) -> str | None:
        row = self.db.execute("SELECT key FROM job").fetchone()
        return row[0] if row else None

    def start(self, key: str, plan: list[Segment]) -> None:
        """Forget everything and record a new job."""
        blob = json.dumps([dataclasses.asdict(s) for s in plan])
        with self.db:
            self.db.execute("DELETE FROM segment")
            self.db.execute("DELETE FROM job")
            self.db.execute("INSERT INTO job (id, key, plan) VALUES (1, ?, ?)", (key, blob))

    def plan(self) -> list[Segment]:
        (blob,) = self.db.execute("SELECT plan FROM job").fetchone()
        return [Segment(**fields) for fields in json.loads(blob)]

    def finished(self) -> dict[int, int]:
        """Finished segments: index -> frames written."""
        return dict(self.db.execute("SELECT idx, frames FROM segment"))

    def finish_segment(self, index: int, frames: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO segment VALUES (?, ?, ?)",
                        (index, frames, time.time()))

    def joined(self) -> str | None:
        row = self.db.execute("SELECT joined FROM job").fetchone()
        return row[0] if row else None

    def set_joined(self, signature: str | None) -> None:
        self.db.execute("UPDATE job SET joined = ?", (signature,))


@contextlib.contextmanager
def open_journal(folder: Path, dst: Path) -> Iterator[Journal]:
    """The job's journal, held under an exclusive lock (released by the kernel if this
    process dies); a second process on the same output is refused in one line."""
    folder.mkdir(exist_ok=True)
    with open(folder / LOCK_NAME, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(dst, "another vidstyle process is working on this output "
                                   f"(its journal {folder.name} is locked)") from None
        journal = Journal(folder / JOURNAL_NAME)
        try:
            yield journal
        finally:
            journal.close()


def segment_file(folder: Path, dst: Path, index: int) -> Path:
    return folder / f"seg{index:05d}{dst.suffix or '.mp4'}"


def stylize_resumable(
    holder: EngineHolder,
    settings: Settings,
    src: Path,
    dst: Path,
    info: MediaInfo,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    inputs: list[Path] | None = None,
) -> VideoResult:
    """A resumable job: go on from the journal beside `dst` (or start one), stylize the
    unfinished segments through `holder`'s engine, join, publish, clean up. `inputs`:
    every input of the run (default: `src`); the output may not be or alias any of them."""
    inputs = inputs or [src]
    folder = resume_folder(dst)
    started = time.monotonic()
    if folder.is_dir():
        finished = _finished_earlier(folder, dst, src, settings, holder, started)
        if finished is not None:
            return finished
    check_output_path(dst, settings.output.overwrite, inputs=inputs)
    with open_journal(folder, dst) as journal:
        segments, done = _plan(journal, src, settings, folder)
        resumed = len(done)
        progress = SegmentsProgress(src, segments, done, on_progress, started)
        paths = [segment_file(folder, dst, s.index) for s in segments]
        stylize_in_order(holder, settings, src, info, segments, paths, done,
                         warmup=warmup_seconds(settings, info),
                         on_finished=lambda segment, frames: journal.finish_segment(
                             segment.index, frames),
                         progress=progress, cancel=cancel)
        # A rename keeps the inode and mtime: if this process dies between the rename and
        # deleting the folder, the next run recognises the output as this job's.
        frames, mux = join(paths, segments, info, dst, settings, inputs=[src],
                           before_publish=lambda tmp: journal.set_joined(file_signature(tmp)))
    shutil.rmtree(folder, ignore_errors=True)
    progress.finish(frames)
    notes = [f"resumed: {resumed} of {len(segments)} segments were already done"] \
        if resumed else []
    return VideoResult.from_mux(mux, src=src, dst=dst, frames=frames,
                                seconds=time.monotonic() - started, device=str(holder.device),
                                precision=precision_name(holder.dtype), notes=notes)


def _plan(journal: Journal, src: Path, settings: Settings,
          folder: Path) -> tuple[list[Segment], dict[int, int]]:
    """The journal's plan and finished segments when it is this job's; else a fresh
    plan (and the old job's segment files deleted)."""
    key = job_key(src, settings)
    if journal.key() == key:
        return journal.plan(), journal.finished()
    for old in folder.glob("seg*"):
        old.unlink()
    segments = plan(src, settings, seconds=settings.resume_segment)
    journal.start(key, segments)
    return segments, {}


def _finished_earlier(folder: Path, dst: Path, src: Path, settings: Settings,
                      holder: EngineHolder, started: float) -> VideoResult | None:
    """The result of a job whose output was published by a process that died before it
    could delete the journal; None when the journal is not of a finished job."""
    journal_path = folder / JOURNAL_NAME
    if not journal_path.is_file():
        return None
    with open_journal(folder, dst) as journal:
        signature = journal.joined()
        if signature is None or signature != file_signature(dst):
            return None
        if journal.key() != job_key(src, settings):
            return None
        frames = sum(journal.finished().values())
    shutil.rmtree(folder, ignore_errors=True)
    return VideoResult.written_earlier(
        src, dst, frames, "finished by an earlier run, which died while cleaning up",
        seconds=time.monotonic() - started, device=str(holder.device),
        precision=precision_name(holder.dtype))
