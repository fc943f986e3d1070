"""The job ledger: one SQLite file that says, for every (input, settings) pair, what happened.

It is the single source of truth for the watch loop and for any executor that runs jobs
elsewhere: a job is processed only after a watcher *claims* it here, and it is done only
once the ledger says so. The rules that make that safe:

* Every write is one short transaction. A claim is ``BEGIN IMMEDIATE`` (takes SQLite's
  write lock before reading), so two watchers can never claim the same queued row.
* A claim carries an owner (host, pid, process start time) and a lease expiry that a
  heartbeat renews. A running job whose owner died (same host: its pid is gone or was
  reused) or whose lease ran out (any host) is stale and goes back to the queue.
* Updates that finish a job name the owner in their WHERE clause: a watcher that lost its
  lease (stopped for a minute, say) cannot overwrite what the new owner recorded.
* WAL journal with ``synchronous=FULL``: readers (``vidstyle status``) never block the
  watcher, and a committed state survives a power cut (NORMAL could lose the last commits
  on power loss, and the write rate here is a few rows a minute).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from vidstyle.config import Settings, merge
from vidstyle.errors import SettingsError
from vidstyle.files import file_signature, pid_alive

LEDGER_NAME = "ledger.sqlite"
# Default state folder, inside the output folder: <out>/.vidstyle/ledger.sqlite.
STATE_FOLDER = ".vidstyle"
# A one-line file left in the inbox naming the state folder, so `vidstyle status inbox/`
# finds the ledger wherever --out or --state put it.
POINTER_NAME = ".vidstyle-watch"
STATES = ("queued", "running", "done", "failed")
SCHEMA_VERSION = 1
# How long another process may wait for SQLite's write lock before giving up. Claims and
# updates hold it for milliseconds; 30 s covers a slow network disk or a busy CI box.
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id            INTEGER PRIMARY KEY,
    input         TEXT    NOT NULL,   -- absolute path where the input was found
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    content_hash  TEXT    NOT NULL,   -- blake2b of the whole file
    style         TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,   -- Settings.fingerprint() of the job's settings
    settings      TEXT    NOT NULL,   -- the settings as JSON, for executors elsewhere
    output        TEXT    NOT NULL,   -- where the finished output appears
    prior_output  TEXT,               -- signature of a file already at `output` when claimed
    state         TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    owner         TEXT,
    lease_expires REAL,
    created_at    REAL    NOT NULL,
    started_at    REAL,
    finished_at   REAL,
    seconds       REAL,
    frames        INTEGER,
    error         TEXT,
    note          TEXT,               -- how the job ended when not plainly (recovered...)
    moved_to      TEXT,
    UNIQUE (input, content_hash, fingerprint)
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_by_file ON jobs (input, size, mtime_ns);
"""


@dataclass(frozen=True)
class JobRecord:
    """One row of the ledger: one input file (one version of it) with one style."""

    id: int
    input: str
    size: int
    mtime_ns: int
    content_hash: str
    style: str
    fingerprint: str
    settings: str
    output: str
    prior_output: str | None
    state: str
    attempts: int
    owner: str | None
    lease_expires: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    seconds: float | None
    frames: int | None
    error: str | None
    note: str | None
    moved_to: str | None

    @property
    def src(self) -> Path:
        return Path(self.input)

    @property
    def dst(self) -> Path:
        return Path(self.output)

    def job_settings(self) -> Settings:
        """The settings this job was queued with (rebuilt from the ledger's JSON)."""
        return merge(Settings(), json.loads(self.settings))

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("settings")
        return data


# -- owners -------------------------------------------------------------------------------


def process_start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/<pid>/stat field 22), or None.

    Pids are reused; the start time tells a new process from the dead owner that had the
    same pid.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def machine_id() -> str:
    """``hostname/boot``: the boot id tells this boot from the one before a power cut,
    when a watcher started at boot may get the same pid and start time again."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{boot}"


def current_owner() -> str:
    """This process as a lease owner: ``host/boot:pid:start``."""
    pid = os.getpid()
    start = process_start_ticks(pid)
    return f"{machine_id()}:{pid}:{start if start is not None else 'x'}"


def parse_owner(owner: str) -> tuple[str, int, str]:
    host, pid, start = owner.rsplit(":", 2)
    return host, int(pid), start


def owner_alive(owner: str) -> bool | None:
    """True/False for an owner on this host; None when it runs elsewhere (ask the lease)."""
    host, pid, start = parse_owner(owner)
    if host.split("/")[0] != socket.gethostname():
        return None
    if host != machine_id() or not pid_alive(pid):  # an earlier boot, or gone
        return False
    ticks = process_start_ticks(pid)
    return ticks is None or start == "x" or str(ticks) == start


# -- the ledger -----------------------------------------------------------------------------


class Ledger:
    """A connection to one ledger file. Use one per thread (SQLite connections are not
    shared across threads here); every method is one transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        self.db.row_factory = sqlite3.Row
        self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )

    @classmethod
    def in_folder(cls, state_dir: str | Path) -> Ledger:
        return cls(Path(state_dir) / LEDGER_NAME)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): the write lock from the start,
        so a read-then-write (a claim) cannot interleave with another writer."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- metadata ------------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    # -- adding jobs ---------------------------------------------------------------------

    def known_hash(self, input: str, size: int, mtime_ns: int) -> str | None:
        """The content hash recorded for this exact file version, so that an unchanged
        file is not read again on every scan."""
        row = self.db.execute(
            "SELECT content_hash FROM jobs WHERE input = ? AND size = ? AND mtime_ns = ? "
            "ORDER BY id DESC LIMIT 1",
            (input, size, mtime_ns),
        ).fetchone()
        return row[0] if row else None

    def has_job(self, input: str, content_hash: str, fingerprint: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM jobs WHERE input = ? AND content_hash = ? AND fingerprint = ?",
            (input, content_hash, fingerprint),
        ).fetchone()
        return row is not None

    def add_job(
        self,
        *,
        input: str,
        size: int,
        mtime_ns: int,
        content_hash: str,
        style: str,
        settings: Settings,
        output: str,
        error: str | None = None,
    ) -> JobRecord | None:
        """Queue a job (or record it as failed when `error` is given, e.g. not a video).

        Returns None when the same file content with the same settings is already in the
        ledger, whatever its state: that is the "never twice" rule. Older queued jobs for
        the same input and style (an earlier version of the file that never ran) are
        dropped: the new version replaces them.
        """
        fingerprint = settings.fingerprint()
        now = time.time()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (input, size, mtime_ns, content_hash, style, "
                "fingerprint, settings, output, state, created_at, finished_at, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    input, size, mtime_ns, content_hash, style, fingerprint,
                    json.dumps(settings.to_dict(), default=str), output,
                    "failed" if error else "queued", now, now if error else None, error,
                ),
            )
            if cursor.rowcount == 0:
                return None
            job_id = cursor.lastrowid
            db.execute(
                "DELETE FROM jobs WHERE input = ? AND style = ? AND state = 'queued' "
                "AND id != ?",
                (input, style, job_id),
            )
        return self.job(job_id)

    # -- claiming and finishing ------------------------------------------------------------

    def claim(
        self, owner: str, fingerprints: Iterable[str], lease_seconds: float
    ) -> JobRecord | None:
        """Take the oldest queued job with one of `fingerprints` (this watcher's settings),
        mark it running under `owner`, and return it; None if there is none."""
        fingerprints = list(fingerprints)
        marks = ",".join("?" * len(fingerprints))
        now = time.time()
        with self.transaction() as db:
            row = db.execute(
                f"SELECT id, output FROM jobs WHERE state = 'queued' "
                f"AND fingerprint IN ({marks}) ORDER BY id LIMIT 1",
                fingerprints,
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', owner = ?, lease_expires = ?, "
                "started_at = ?, finished_at = NULL, error = NULL, note = NULL, "
                "prior_output = ?, attempts = attempts + 1 WHERE id = ?",
                (owner, now + lease_seconds, now, file_signature(Path(row["output"])), row["id"]),
            )
        return self.job(row["id"])

    def renew(self, owner: str, lease_seconds: float) -> int:
        """Extend the lease of every job `owner` runs (the heartbeat); returns how many."""
        with self.transaction() as db:
            return db.execute(
                "UPDATE jobs SET lease_expires = ? WHERE state = 'running' AND owner = ?",
                (time.time() + lease_seconds, owner),
            ).rowcount

    def complete(self, job_id: int, owner: str, *, frames: int | None, seconds: float,
                 note: str | None = None) -> bool:
        """Mark done; False if `owner` no longer holds the job (its lease was taken)."""
        return self._finish(job_id, owner, "done", frames=frames, seconds=seconds, note=note)

    def fail(self, job_id: int, owner: str, error: str, *, seconds: float | None = None) -> bool:
        """Mark failed with its one-line error; False if `owner` no longer holds the job."""
        return self._finish(job_id, owner, "failed", error=error, seconds=seconds)

    def release(self, job_id: int, owner: str, note: str | None = None) -> bool:
        """Put a running job back in the queue (cancelled, or recovered from a dead owner)."""
        with self.transaction() as db:
            return db.execute(
                "UPDATE jobs SET state = 'queued', owner = NULL, lease_expires = NULL, "
                "note = ? WHERE id = ? AND state = 'running' AND owner = ?",
                (note, job_id, owner),
            ).rowcount == 1

    def _finish(self, job_id: int, owner: str, state: str, *, frames: int | None = None,
                seconds: float | None = None, error: str | None = None,
                note: str | None = None) -> bool:
        with self.transaction() as db:
            return db.execute(
                "UPDATE jobs SET state = ?, owner = NULL, lease_expires = NULL, "
                "finished_at = ?, frames = ?, seconds = ?, error = ?, note = ? "
                "WHERE id = ? AND state = 'running' AND owner = ?",
                (state, time.time(), frames, seconds, error, note, job_id, owner),
            ).rowcount == 1

    # -- recovery --------------------------------------------------------------------------

    def stale_jobs(self, now: float | None = None) -> list[JobRecord]:
        """Running jobs whose owner is dead (same host) or whose lease has expired."""
        now = time.time() if now is None else now
        stale = []
        for job in self.jobs(["running"]):
            alive = owner_alive(job.owner) if job.owner else False
            expired = job.lease_expires is None or job.lease_expires < now
            if alive is False or (alive is None and expired):
                stale.append(job)
        return stale

    def requeue_failed(self, fingerprints: Iterable[str] | None = None) -> int:
        """Failed jobs (of these settings, or all) go back to the queue; returns how many."""
        query = "UPDATE jobs SET state = 'queued', note = 'retry', error = NULL " \
                "WHERE state = 'failed'"
        params: list[str] = []
        if fingerprints is not None:
            params = list(fingerprints)
            query += f" AND fingerprint IN ({','.join('?' * len(params))})"
        with self.transaction() as db:
            return db.execute(query, params).rowcount

    def set_moved(self, input: str, content_hash: str, moved_to: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET moved_to = ? WHERE input = ? AND content_hash = ?",
                (moved_to, input, content_hash),
            )

    # -- queries ---------------------------------------------------------------------------

    def job(self, job_id: int) -> JobRecord:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobRecord(**dict(row))

    def jobs(self, states: Iterable[str] | None = None, limit: int = -1) -> list[JobRecord]:
        """Jobs in these states (all if None), oldest first, at most `limit` (-1: all)."""
        query, params = "SELECT * FROM jobs", []
        if states is not None:
            params = list(states)
            query += f" WHERE state IN ({','.join('?' * len(params))})"
        rows = self.db.execute(query + " ORDER BY id LIMIT ?", [*params, limit]).fetchall()
        return [JobRecord(**dict(row)) for row in rows]

    def jobs_for_file(self, input: str, content_hash: str) -> list[JobRecord]:
        rows = self.db.execute(
            "SELECT * FROM jobs WHERE input = ? AND content_hash = ? ORDER BY id",
            (input, content_hash),
        ).fetchall()
        return [JobRecord(**dict(row)) for row in rows]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, n in self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            counts[state] = n
        return counts


def locate_ledger(path: str | Path) -> Path:
    """The ledger file for `path`: a ledger file, a state folder, an output folder (its
    .vidstyle/), or an inbox (its .vidstyle-watch pointer)."""
    path = Path(path)
    pointer = path / POINTER_NAME
    candidates = [path, path / LEDGER_NAME, path / STATE_FOLDER / LEDGER_NAME]
    if pointer.is_file():
        candidates.append(Path(pointer.read_text().strip()) / LEDGER_NAME)
    for candidate in candidates:
        if candidate.is_file() and candidate.name == LEDGER_NAME:
            return candidate
    raise SettingsError(
        f"{path}: no watch ledger found here (name the state folder with --state)"
    )
