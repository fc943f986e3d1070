"""Finding input files that are ready: complete, closed, and really videos.

A file dropped into a watch folder arrives over time (a copy, an upload, a render). It is
taken only when all of these hold:

1. its name ends in a video extension and is not hidden (our own temp files start with ".");
2. its size and mtime have not changed for `settle` seconds, as seen by us (our clock,
   not the file's mtime, so clock skew on a network share cannot fool it);
3. no process has it open for writing (Linux: /proc/*/fd plus the fd's access mode in
   /proc/*/fdinfo); this catches a writer that pauses longer than `settle`;
4. PyAV opens it and finds a video stream (a text file named .mp4 fails here, and is
   recorded as failed rather than retried forever).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from vidstyle.errors import InputError
from vidstyle.files import is_video_name
from vidstyle.media.probe import probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int


def stat_of(path: Path) -> FileStat | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return FileStat(st.st_size, st.st_mtime_ns)


def is_hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def find_videos(inbox: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Video-named, non-hidden files under `inbox` (recursively, sorted), skipping the
    folders in `exclude` (the output, state and move folders when they live inside)."""
    excluded = [p.resolve() for p in exclude]
    found = []
    for dirpath, dirnames, filenames in os.walk(inbox):
        folder = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and (folder / d).resolve() not in excluded
        )
        found.extend(
            folder / name for name in sorted(filenames)
            if not name.startswith(".") and is_video_name(Path(name))
        )
    return found


class SettleTracker:
    """Remembers when each file last changed (as we saw it) and says which have held still
    for `settle` seconds."""

    def __init__(self, settle: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.settle = settle
        self.clock = clock
        self._seen: dict[Path, tuple[FileStat, float]] = {}

    def observe(self, paths: Iterable[Path]) -> tuple[list[tuple[Path, FileStat]], list[Path]]:
        """Update with the files present now; return (settled with their stat, still moving)."""
        now = self.clock()
        settled, moving = [], []
        present = {}
        for path in paths:
            stat = stat_of(path)
            if stat is None:
                continue
            previous = self._seen.get(path)
            since = previous[1] if previous and previous[0] == stat else now
            present[path] = (stat, since)
            if now - since >= self.settle:
                settled.append((path, stat))
            else:
                moving.append(path)
        self._seen = present
        return settled, moving

    def restart(self, path: Path) -> None:
        """Start the settle clock of `path` again (it was found open for writing)."""
        if path in self._seen:
            self._seen[path] = (self._seen[path][0], self.clock())


# -- open-for-writing check ------------------------------------------------------------------

PROC = Path("/proc")
_warned_no_proc = False


def can_see_open_files() -> bool:
    return (PROC / "self" / "fdinfo").is_dir()


def open_for_writing(paths: Iterable[Path]) -> set[Path]:
    """The subset of `paths` that some process holds open with O_WRONLY or O_RDWR.

    Reads /proc/<pid>/fd/* links and the ``flags:`` line of /proc/<pid>/fdinfo/<fd>.
    Processes we may not inspect (other users') are skipped. Where /proc is absent (macOS,
    Windows) it returns an empty set and the settle time is the only guard.
    """
    global _warned_no_proc
    targets = {}
    for path in paths:
        try:
            targets[os.path.realpath(path)] = path
        except OSError:
            continue
    if not targets:
        return set()
    if not can_see_open_files():
        if not _warned_no_proc:
            log.warning("no /proc here: relying on the settle time alone to detect writers")
            _warned_no_proc = True
        return set()
    busy: set[Path] = set()
    for pid_dir in PROC.iterdir():
        if pid_dir.name.isdigit():
            busy.update(targets[t] for t in _written_by(pid_dir, targets))
    return busy


def _written_by(pid_dir: Path, targets: dict[str, Path]) -> list[str]:
    try:
        fds = list((pid_dir / "fd").iterdir())
    except OSError:  # gone, or not ours to look at
        return []
    hits = []
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target in targets and _fd_writable(pid_dir / "fdinfo" / fd.name):
            hits.append(target)
    return hits


def _fd_writable(fdinfo: Path) -> bool:
    try:
        text = fdinfo.read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags:"):
            flags = int(line.split()[1], 8)  # printed in octal
            return flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    return False


# -- content --------------------------------------------------------------------------------


def probe_error(path: Path) -> str | None:
    """None if PyAV opens `path` and finds a video stream, else the one-line reason."""
    try:
        probe(path)
    except InputError as exc:
        return str(exc)
    return None
