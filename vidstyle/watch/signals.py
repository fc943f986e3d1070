"""The threads and handlers that wake, stop and vouch for a watch loop: file events in
the inbox, SIGINT/SIGTERM, and the heartbeat that keeps this owner's leases alive."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import watchfiles

from vidstyle.watch.ledger import Ledger

log = logging.getLogger(__name__)

# Heartbeats per lease: three missed beats in a row before anyone may take the job over.
HEARTBEATS_PER_LEASE = 4
# --poll (network filesystems, where inotify sees nothing written by other machines).
POLL_SECONDS = 1.0
# watchfiles groups bursts of events for this long; a copy in progress fires thousands.
EVENT_DEBOUNCE_MS = 200


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
