"""Files: what counts as a video or an image, safe output, and reading/writing pictures.

One home for everything about names and bytes on disk that several rooms need:

* suffixes (`VIDEO_SUFFIXES`, `IMAGE_SUFFIXES`) and input expansion (`expand_inputs`);
* atomic output: a hidden temporary name beside the target (`temp_path_for`), data made
  durable before the rename (`flush_to_disk`), leftovers of dead processes found
  (`temp_pid`, `temp_files`) and swept (`sweep_stale_temporaries`);
* file identity (`file_signature`, `content_hash`, `same_file`);
* pictures as RGB uint8 arrays (`read_image`, `write_image`).

Nothing here knows about tensors, networks or containers.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from vidstyle.errors import InputError, OutputError, SettingsError

# Containers PyAV/FFmpeg read that people keep video in.
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".mts"}
)
# Formats OpenCV's imdecode/imencode handle in every build.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})

TEMP_MARKER = ".vidstyle-tmp-"
_TEMP_PID = re.compile(re.escape(TEMP_MARKER) + r"(\d+)-")
# Most file systems cap one name at 255 bytes (NAME_MAX). The temporary name adds a dot,
# the marker, a pid, a token and the suffix to the target's, so a long target name is
# shortened in the middle of the temporary one instead of failing with ENAMETOOLONG.
NAME_MAX = 255
# 16-byte blake2b: collisions are out of reach for any folder, and the hex stays short.
HASH_BYTES = 16
# Read size for hashing: 1 MiB keeps the syscall count low without holding much memory.
HASH_CHUNK = 1 << 20


# -- kinds of file --------------------------------------------------------------------------


def is_video_name(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def is_image_name(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_regular_file(path: Path) -> bool:
    """True for a regular file (links followed). FIFOs, devices and sockets are not: reading
    one blocks forever or never ends (a FIFO with no writer, /dev/zero)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def not_a_regular_file_reason(path: Path) -> str | None:
    """Why `path` cannot be read as a media file, or None when it can be tried."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "is a folder"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a file"
    return None


def expand_inputs(
    paths: Iterable[str | Path],
    *,
    skip: Callable[[Path], str | None] | None = None,
    skipped: list[tuple[Path, str]] | None = None,
) -> list[Path]:
    """Files as given; folders expand to the video files inside them (recursively, sorted,
    hidden names skipped).

    Inside folders, non-regular files (FIFOs, devices, sockets) are left out, and so is
    any file for which `skip` gives a reason (vidstyle's own outputs); each one left out
    is appended to `skipped` with its reason, for the caller to warn about. A file named
    on its own is always kept: it is refused, if it must be, with its own one-line error.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            found.append(path)
            continue
        for candidate in sorted(path.rglob("*")):
            if not is_video_name(candidate) or candidate.name.startswith("."):
                continue
            reason = not_a_regular_file_reason(candidate)
            if reason is None and skip is not None:
                reason = skip(candidate)
            if reason is None:
                found.append(candidate)
            elif skipped is not None and reason != "is a folder":
                skipped.append((candidate, reason))
    if not found:
        raise SettingsError("no input videos found")
    return found


def user_cache_dir() -> Path:
    """The user's cache folder for vidstyle (``$XDG_CACHE_HOME/vidstyle``, else ~/.cache):
    compiled packages, style vectors; anything here can be rebuilt."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vidstyle"


# -- identity -------------------------------------------------------------------------------


def file_signature(path: Path) -> str | None:
    """Identity of the file now at `path` (device, inode, size, mtime), or None if absent.

    An atomic rename puts a new inode in place, so a changed signature means the file was
    replaced, even by a process that died before it could say so.
    """
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def content_hash(path: Path, stop: Callable[[], bool] | None = None) -> str:
    """blake2b of the whole file, read in 1 MiB chunks. `stop()` is asked between chunks
    (a signal must not wait for a many-gigabyte file): when true, InterruptedError.
    Only regular files are read: a FIFO would block, /dev/zero would never end."""
    reason = not_a_regular_file_reason(path)
    if reason:
        raise InputError(path, reason)
    digest = hashlib.blake2b(digest_size=HASH_BYTES)
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            if stop is not None and stop():
                raise InterruptedError(f"{path}: hashing stopped")
            digest.update(chunk)
    return digest.hexdigest()


def same_file(a: Path, b: Path) -> bool:
    """True when `a` and `b` name one file: the same path, or the same inode (a hard link
    or a symlink to it)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# -- safe output ----------------------------------------------------------------------------


def temp_path_for(dst: Path) -> Path:
    """A hidden temporary name beside `dst`, with its extension (so the format is guessed).

    The marker and pid let `sweep_stale_temporaries` (and the watcher) find the leftovers
    of a process that died. The name always fits in NAME_MAX bytes: a long target name is
    shortened here, never the target itself.
    """
    tail = f"{TEMP_MARKER}{os.getpid()}-{host_tag()}{secrets.token_hex(4)}{dst.suffix}"
    budget = NAME_MAX - len(tail.encode()) - 1
    head = dst.name
    while len(head.encode()) > budget:
        head = head[:-1]
    return dst.with_name(f".{head}{tail}")


def host_tag() -> str:
    """Four hex digits naming this machine: on shared storage a pid means something only
    on the machine that wrote it, so a sweep leaves other machines' files alone."""
    return hashlib.blake2b(socket.gethostname().encode(), digest_size=2).hexdigest()


def temp_pid(path: Path) -> int | None:
    """The pid written into a temporary name (``.clip.scream.mp4.vidstyle-tmp-<pid>-...``)."""
    match = _TEMP_PID.search(path.name)
    return int(match.group(1)) if match and path.name.startswith(".") else None


def temp_files(folder: Path, dst: Path | None = None) -> list[Path]:
    """Temporary outputs under `folder` (recursively), or only those beside output `dst`."""
    if dst is not None:
        root = dst.parent
        if not root.is_dir():
            return []
        prefix = f".{temp_path_prefix(dst)}"
        return sorted(p for p in root.glob(f".*{TEMP_MARKER}*") if p.name.startswith(prefix))
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob(f".*{TEMP_MARKER}*") if temp_pid(p) is not None)


def temp_path_prefix(dst: Path) -> str:
    """The part of `dst`'s temporary names that comes from `dst` (maybe shortened)."""
    return temp_path_for(dst).name[1:].split(TEMP_MARKER)[0]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def sweep_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporary outputs directly in `folder` whose writer process is gone (a
    `kill -9`, a power cut). Returns what was removed. A live writer's files are kept."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.glob(f".*{TEMP_MARKER}*"):
        pid = temp_pid(path)
        if pid is None or pid == os.getpid() or pid_alive(pid) or not _written_here(path):
            continue
        with contextlib.suppress(OSError):
            if path.is_dir():
                for child in path.iterdir():
                    child.unlink()
                path.rmdir()
            else:
                path.unlink()
            removed.append(path)
    return removed


def _written_here(path: Path) -> bool:
    return path.name.split(TEMP_MARKER, 1)[1].split("-", 1)[1].startswith(host_tag())


def flush_to_disk(path: Path) -> None:
    """fsync a file or a folder (the latter makes a rename durable).

    Raises OutputError when the data cannot be made durable (EIO, ENOSPC on a network
    file system): a "done" that a power cut would undo is worse than a clear failure. A
    folder that cannot be fsync'd at all (EINVAL on some file systems) is not an error:
    the rename is still atomic there.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise OutputError(path, f"cannot open to flush ({exc.strerror or exc})") from None
    try:
        os.fsync(descriptor)
    except OSError as exc:
        if not (path.is_dir() and exc.errno in (errno.EINVAL, errno.ENOTSUP, errno.EBADF)):
            raise OutputError(path, f"cannot flush to disk ({exc.strerror or exc})") from None
    finally:
        os.close(descriptor)


def check_output_path(dst: Path, overwrite: bool, inputs: Iterable[Path] = ()) -> None:
    """Refuse, before any work, an output that cannot be written or would replace an input.

    `inputs`: every input of the run. An output that is, or aliases (same inode), one of
    them is refused even with `overwrite`: inputs are never replaced.
    """
    for src in inputs:
        if dst.exists() and same_file(dst, src) or dst.resolve() == src.resolve():
            raise OutputError(dst, f"output would overwrite the input {src.name} "
                                   "(inputs are never replaced, even with --overwrite)")
    if len(dst.name.encode()) > NAME_MAX:
        raise OutputError(dst, f"file name is {len(dst.name.encode())} bytes long; file "
                               f"systems allow {NAME_MAX} (name a shorter output)")
    folder = dst.parent
    if not folder.exists():
        raise OutputError(folder, "output folder does not exist")
    if not folder.is_dir():
        raise OutputError(folder, "output folder is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(folder, "output folder is not writable")
    if dst.is_dir():
        raise OutputError(dst, "is a folder; name a file to write")
    if dst.exists() and not overwrite:
        raise OutputError(dst, "already exists (use --overwrite to replace it)")


@contextlib.contextmanager
def atomic_output(dst: Path, overwrite: bool, inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """Yield a temporary path beside `dst`; on success make it durable and rename it to
    `dst`, on any failure (or Ctrl-C) delete it. Stale temporaries of dead processes in
    the same folder are swept first."""
    inputs = list(inputs)
    check_output_path(dst, overwrite, inputs)
    sweep_stale_temporaries(dst.parent)
    tmp = temp_path_for(dst)
    try:
        yield tmp
        check_output_path(dst, overwrite, inputs)  # the world may have changed meanwhile
        # Data on disk before the name appears: after a power cut the watch ledger may say
        # "done", and the file it points to must then be whole, not empty.
        flush_to_disk(tmp)
        os.replace(tmp, dst)
        flush_to_disk(dst.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def output_folder(folder: Path | None) -> Iterator[None]:
    """Create `folder` (and missing parents) for a run; remove what was created if the
    run left nothing in it, so a failed run leaves no empty folder behind."""
    if folder is None or folder.is_dir():
        yield
        return
    if folder.exists():
        raise OutputError(folder, "exists and is not a folder; name a folder for --out")
    created = [folder, *(p for p in folder.parents if not p.exists())]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(folder, f"cannot create the output folder "
                                  f"({exc.strerror or exc})") from None
    try:
        yield
    finally:
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds on an empty folder


# -- pictures -------------------------------------------------------------------------------


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 ``H x W x 3`` pixels of an image file, or InputError naming the reason."""
    path = Path(path)
    reason = not_a_regular_file_reason(path)
    if reason:
        raise InputError(path, reason)
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise InputError(path, "file is empty (0 bytes)")
    pixels = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if pixels is None:
        raise InputError(path, "not an image OpenCV can read, or the file is corrupt")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def write_image(path: Path, pixels: np.ndarray, *, suffix: str | None = None) -> None:
    """Encode RGB uint8 pixels in the format `suffix` (default: the path's) and write them."""
    ok, encoded = cv2.imencode(suffix or path.suffix, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(path, "could not encode the image")
    try:
        encoded.tofile(path)
    except OSError as exc:
        raise OutputError(path, f"write failed ({exc.strerror or exc})") from None
