"""The watch ledger: exclusive claims, never-twice keys, leases, crash-consistent state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from vidstyle.config import Settings
from vidstyle.errors import SettingsError
from vidstyle.files import file_signature
from vidstyle.watch.ledger import (
    Ledger,
    current_owner,
    locate_ledger,
    owner_alive,
)

SCREAM = Settings(style="scream")
WAVE = Settings(style="wave")


@pytest.fixture
def ledger(tmp_path):
    with Ledger.in_folder(tmp_path / "state") as ledger:
        yield ledger


def add(ledger: Ledger, name: str = "clip.mp4", digest: str = "h1", settings=SCREAM, **kw):
    return ledger.add_job(
        input=f"/in/{name}", size=10, mtime_ns=1, content_hash=digest, style=settings.style,
        settings=settings, output=f"/out/{name}.{settings.style}.mp4", **kw,
    )


def dead_owner() -> str:
    """An owner id on this host whose process has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:1"


def test_same_content_and_settings_is_one_job_changes_make_new_ones(ledger):
    first = add(ledger)
    assert first is not None and first.state == "queued"
    assert add(ledger) is None  # same file, same settings: never twice
    assert add(ledger, settings=WAVE) is not None  # other settings
    assert add(ledger, digest="h2") is not None  # changed content (replaces queued h1)
    assert [(j.style, j.content_hash) for j in ledger.jobs()] == [("wave", "h1"),
                                                                  ("scream", "h2")]


def test_a_new_version_replaces_the_queued_old_one_but_keeps_history(ledger):
    owner = current_owner()
    old = add(ledger, name="a.mp4", digest="v1")
    ledger.claim(owner, [SCREAM.fingerprint()], 60)
    ledger.complete(old.id, owner, frames=5, seconds=1.0)
    add(ledger, name="a.mp4", digest="v2")  # queued, never runs...
    add(ledger, name="a.mp4", digest="v3")  # ...because v3 replaced it
    assert [(j.content_hash, j.state) for j in ledger.jobs()] == [
        ("v1", "done"), ("v3", "queued")
    ]


def test_claim_takes_only_this_watchers_settings_oldest_first(ledger):
    add(ledger, name="a.mp4", settings=WAVE)
    b = add(ledger, name="b.mp4")
    c = add(ledger, name="c.mp4")
    owner = current_owner()
    claimed = ledger.claim(owner, [SCREAM.fingerprint()], 60)
    assert claimed.id == b.id and claimed.state == "running" and claimed.owner == owner
    assert claimed.attempts == 1 and claimed.lease_expires > time.time() + 50
    assert ledger.claim(owner, [SCREAM.fingerprint()], 60).id == c.id
    assert ledger.claim(owner, [SCREAM.fingerprint()], 60) is None


def test_concurrent_claims_never_hand_out_a_job_twice(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as setup:
        for i in range(60):
            add(setup, name=f"{i}.mp4")
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with Ledger(path) as ledger:  # a connection per worker, as in separate processes
            while (job := ledger.claim(f"host:{n}:1", [SCREAM.fingerprint()], 60)):
                with lock:
                    claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == list(range(1, 61))


def test_only_the_owner_can_finish_or_release(ledger):
    job = add(ledger)
    owner = current_owner()
    ledger.claim(owner, [SCREAM.fingerprint()], 60)
    assert not ledger.complete(job.id, "other:1:1", frames=1, seconds=1.0)
    assert not ledger.release(job.id, "other:1:1")
    assert ledger.fail(job.id, owner, "clip.mp4: not a video")
    failed = ledger.job(job.id)
    assert failed.state == "failed" and failed.error == "clip.mp4: not a video"
    assert failed.owner is None and failed.finished_at is not None


def test_stale_means_dead_owner_here_or_expired_lease_elsewhere(ledger):
    fp = [SCREAM.fingerprint()]
    mine, dead, remote_expired, remote_live = (add(ledger, name=f"{i}.mp4") for i in range(4))
    ledger.claim(current_owner(), fp, 60)
    ledger.claim(dead_owner(), fp, 60)
    ledger.claim("elsewhere:1:1", fp, -1)  # lease already over
    ledger.claim("elsewhere:2:1", fp, 60)
    assert {j.id for j in ledger.stale_jobs()} == {dead.id, remote_expired.id}
    assert owner_alive(current_owner()) is True
    assert owner_alive("elsewhere:2:1") is None


def test_owner_from_an_earlier_boot_is_dead_even_with_our_pid_and_start(ledger):
    """After a power cut a watcher started at boot can get the same pid and start time."""
    host, pid, start = current_owner().rsplit(":", 2)
    if "/" not in host:
        pytest.skip("no boot id on this system")
    job = add(ledger)
    ledger.claim(f"{host.split('/')[0]}/00000000:{pid}:{start}", [SCREAM.fingerprint()], 60)
    assert [j.id for j in ledger.stale_jobs()] == [job.id]


def test_heartbeat_renews_only_own_leases(ledger):
    fp = [SCREAM.fingerprint()]
    a, b = add(ledger, name="a.mp4"), add(ledger, name="b.mp4")
    ledger.claim("elsewhere:1:1", fp, 1)
    ledger.claim("elsewhere:2:1", fp, 1)
    assert ledger.renew("elsewhere:1:1", 100) == 1
    assert ledger.job(a.id).lease_expires > time.time() + 90
    assert ledger.job(b.id).lease_expires < time.time() + 2


def test_retry_failed_requeues_only_the_given_settings(ledger):
    scream = add(ledger, error="bad")
    wave = add(ledger, settings=WAVE, error="bad")
    assert ledger.requeue_failed([SCREAM.fingerprint()]) == 1
    assert ledger.job(scream.id).state == "queued" and ledger.job(scream.id).error is None
    assert ledger.job(wave.id).state == "failed"


def test_job_settings_round_trip_keeps_the_fingerprint(ledger):
    settings = Settings(style="wave", max_size=64, duration=0.5, batch=2)
    job = add(ledger, settings=settings)
    assert job.job_settings().fingerprint() == settings.fingerprint() == job.fingerprint
    assert job.job_settings().gatys.style_layers == settings.gatys.style_layers


def test_killed_writer_mid_transaction_leaves_the_ledger_consistent(tmp_path):
    """A process SIGKILLed inside a write transaction: its change is gone, the lock is
    released, and the next watcher carries on."""
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        job = add(ledger)
    child = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE')\n"
        "db.execute(\"UPDATE jobs SET state = 'done'\")\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with Ledger(path) as ledger:
        assert ledger.job(job.id).state == "queued"
        assert ledger.claim(current_owner(), [SCREAM.fingerprint()], 60).id == job.id


def test_locate_ledger_from_state_out_or_pointer(tmp_path):
    state = tmp_path / "out" / ".vidstyle"
    Ledger.in_folder(state).close()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / ".vidstyle-watch").write_text(f"{state}\n")
    expected = state / "ledger.sqlite"
    for where in (expected, state, tmp_path / "out", inbox):
        assert locate_ledger(where) == expected
    with pytest.raises(SettingsError, match="no watch ledger"):
        locate_ledger(tmp_path)


def test_file_signature_changes_on_atomic_replace(tmp_path):
    target = tmp_path / "out.mp4"
    assert file_signature(target) is None
    target.write_bytes(b"old")
    before = file_signature(target)
    temp = tmp_path / ".out.mp4.tmp"
    temp.write_bytes(b"new")
    os.replace(temp, target)
    assert file_signature(target) != before
