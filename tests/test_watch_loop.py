"""The watch loop end to end: the real `stylize_video` with the catalogue's styles on
0.5 s trims of the sample clips (network at 64 px, fp32: about 1 s a job on this CPU).
Subprocess tests go through the real CLI (`vidstyle watch`), killed and restarted; their
only addition is a log line per finished output, to count duplicates.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest
from rich.console import Console
from typer.testing import CliRunner

import vidstyle
from vidstyle.config import Settings
from vidstyle.errors import InputError
from vidstyle.files import content_hash, temp_files
from vidstyle.watch import folder_status, watch_folder
from vidstyle.watch.display import WatchDisplay
from vidstyle.watch.ledger import POINTER_NAME, Ledger, current_owner

# fp32: bf16 autocast measured 3x slower than fp32 on this CPU for the 64 px network.
FAST = Settings(duration=0.5, max_size=64, batch=2, precision="fp32").replace(
    output={"preset": "ultrafast"}
)


class CountingProcess:
    """The real stylize_video, counting finished outputs."""

    def __init__(self, before=None) -> None:
        self.finished: list[Path] = []
        self.before = before or (lambda src, dst: None)
        self.lock = threading.Lock()

    def __call__(self, src, dst, settings, *, on_progress=None, cancel=None):
        self.before(src, dst)
        result = vidstyle.stylize_video(src, dst, settings, on_progress=on_progress,
                                        cancel=cancel)
        with self.lock:
            self.finished.append(Path(dst))
        return result


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def make_inbox(tmp_path: Path, samples: Path, names: dict[str, str]) -> Path:
    inbox = tmp_path / "inbox"
    for name, sample in names.items():
        (inbox / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(samples / sample, inbox / name)
    return inbox


def states(out: Path) -> list[tuple[str, str, str]]:
    return [(Path(j.input).name, j.style, j.state) for j in folder_status(out)]


# -- in-process ------------------------------------------------------------------------------


def test_once_processes_every_clip_once_and_bad_files_fail_without_blocking(tmp_path, samples):
    inbox = make_inbox(tmp_path, samples, {"a.mp4": "cup.mp4", "sub/b.mp4": "box.mp4"})
    (inbox / "notes.mp4").write_text("not a video\n")
    data = (samples / "bigbuckbunny.mp4").read_bytes()
    (inbox / "half.mp4").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    process = CountingProcess()

    events = []
    summary = watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.2,
                           process=process, on_event=events.append)

    assert (summary.done, summary.failed) == (2, 2)
    check_display(events)
    assert sorted(p.relative_to(out).as_posix() for p in process.finished) == [
        "a.scream.mp4", "sub/b.scream.mp4"
    ]
    for output in process.finished:
        assert frame_count(output) >= 12  # 0.5 s at 25-30 fps, a playable video
    jobs = {Path(j.input).name: j for j in folder_status(inbox)}
    for bad in ("notes.mp4", "half.mp4"):
        assert jobs[bad].state == "failed"
        assert str(inbox / bad) in jobs[bad].error and "\n" not in jobs[bad].error
    assert not (out / "notes.scream.mp4").exists() and temp_files(out) == []

    again = watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.2, process=process)
    assert (again.done, again.failed, len(process.finished)) == (0, 0, 2)  # never twice


def check_display(events) -> None:
    """The events of a real run drive both views: live (terminal) and plain lines."""
    kinds = [e.kind for e in events]
    assert {"queued", "started", "progress", "done", "failed"} <= set(kinds)
    last = [e.progress for e in events if e.kind == "progress"][-1]
    assert last.kind == "done" and last.frames_done >= 12
    terminal = Console(force_terminal=True, record=True, width=100)
    with WatchDisplay(terminal) as display:
        for event in events:
            display(event)
            if event.kind == "progress":
                terminal.print(display.render())
    shown = terminal.export_text()
    assert "fps" in shown and "done 2" in shown and "failed 2" in shown
    log = Console(force_terminal=False, record=True, width=200)
    with WatchDisplay(log) as display:
        for event in events:
            display(event)
    lines = log.export_text().splitlines()
    assert sum(line.startswith("done: ") for line in lines) == 2
    assert any(line.startswith("failed: ") and "not a video" in line for line in lines)


def test_changed_style_or_changed_file_is_processed_again(tmp_path, samples):
    inbox = make_inbox(tmp_path, samples, {"a.mp4": "box.mp4"})
    out = tmp_path / "out"
    process = CountingProcess()
    watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1, process=process)
    watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1, process=process)
    assert len(process.finished) == 1

    watch_folder(inbox, out, ["wave"], FAST, once=True, settle=0.1, process=process)
    assert [p.name for p in process.finished] == ["a.scream.mp4", "a.wave.mp4"]

    first_output = (out / "a.scream.mp4").stat().st_ino
    shutil.copy(samples / "cup.mp4", inbox / "a.mp4")  # new content, same name
    watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1, process=process)
    assert len(process.finished) == 3
    assert (out / "a.scream.mp4").stat().st_ino != first_output  # replaced
    hashes = {j.content_hash for j in folder_status(out) if j.style == "scream"}
    assert content_hash(inbox / "a.mp4") in hashes and len(hashes) == 2


def run_in_thread(inbox, out, **kw):
    stop = threading.Event()
    result = {}

    def target():
        result["summary"] = watch_folder(inbox, out, ["scream"], FAST, stop=stop, **kw)

    thread = threading.Thread(target=target)
    thread.start()
    return stop, thread, result


def wait_for(condition, timeout: float = 60.0, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(step)


def done_jobs(out: Path) -> list:
    try:
        return [j for j in folder_status(out) if j.state in ("done", "failed")]
    except vidstyle.VidstyleError:
        return []


@pytest.mark.parametrize("keep_open", [True, False], ids=["held-open", "reopened"])
def test_file_copied_in_slowly_is_not_picked_up_early(tmp_path, samples, keep_open):
    """Big Buck Bunny keeps its index at the end, so taking it early would fail it.

    held-open: pauses (0.6 s) longer than the settle time (0.2 s); only the
    open-for-writing check holds the file back. reopened: no handle between chunks and
    pauses (0.15 s) shorter than the settle time (1 s); the settle clock holds it back.
    """
    if keep_open and not vidstyle.watch.scan.can_see_open_files():
        pytest.skip("needs Linux /proc")
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    data = (samples / "bigbuckbunny.mp4").read_bytes()
    chunks = [data[i : i + len(data) // 6 + 1] for i in range(0, len(data), len(data) // 6 + 1)]
    settle, pause = (0.2, 0.6) if keep_open else (1.0, 0.15)
    process = CountingProcess()
    stop, thread, result = run_in_thread(inbox, out, settle=settle, process=process)
    target = inbox / "bbb.mp4"
    try:
        if keep_open:
            with open(target, "wb") as file:
                for chunk in chunks:
                    file.write(chunk)
                    file.flush()
                    time.sleep(pause)
        else:
            for chunk in chunks:
                with open(target, "ab") as file:
                    file.write(chunk)
                time.sleep(pause)
        final = content_hash(target)
        wait_for(lambda: any(j.content_hash == final for j in done_jobs(out)))
    finally:
        stop.set()
        thread.join()
    jobs = folder_status(out)
    assert [(j.content_hash, j.size) for j in jobs] == [(final, len(data))]  # one, complete
    assert jobs[0].state == "done", jobs[0].error
    assert len(process.finished) == 1 and result["summary"].done == 1


def test_stop_cancels_the_running_job_cleanly_and_requeues_it(tmp_path, samples):
    inbox = make_inbox(tmp_path, samples, {"box.mp4": "box.mp4"})
    out = tmp_path / "out"
    stop = threading.Event()
    progressed = threading.Event()
    seen: list[int] = []  # frames done, per progress event

    def on_event(event):
        if event.kind == "progress":
            seen.append(event.progress.frames_done)
            if event.progress.frames_done > 0:
                progressed.set()
                stop.set()

    long_job = FAST.replace(duration=None)  # all 15 s: still running when stopped
    process = CountingProcess()
    summary = watch_folder(inbox, out, ["scream"], long_job, settle=0.1, stop=stop,
                           on_event=on_event, process=process)
    assert progressed.is_set() and summary.stopped and summary.requeued == 1
    # The stop reached into the running job: it ended mid-file, not after the last frame.
    assert process.finished == [] and max(seen) < frame_count(inbox / "box.mp4")
    (job,) = folder_status(out)
    assert job.state == "queued" and job.owner is None
    assert not (out / "box.scream.mp4").exists() and temp_files(out) == []


def test_restart_after_crash_finishes_recorded_outputs_and_reruns_partial_ones(
    tmp_path, samples
):
    """Owner died (1) after renaming its output but before recording it: done without
    running again; (2) mid-job with a partial temp file: removed and run again."""
    inbox = make_inbox(tmp_path, samples, {"a.mp4": "cup.mp4", "b.mp4": "box.mp4"})
    out = tmp_path / "out"
    process = CountingProcess()
    watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1, process=process)
    # Re-create the crash: jobs back to running under a dead owner, as claim() left them.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    owner = current_owner().rsplit(":", 2)[0] + f":{dead}:1"
    ledger_path = out / ".vidstyle" / "ledger.sqlite"
    a_output, b_output = out / "a.scream.mp4", out / "b.scream.mp4"
    b_output.unlink()
    partial = out / f".b.scream.mp4.vidstyle-tmp-{dead}-0badf00d.mp4"
    partial.write_bytes(b"half an mp4")
    with sqlite3.connect(ledger_path) as db:
        db.execute("UPDATE jobs SET state = 'running', owner = ?, lease_expires = ?, "
                   "prior_output = NULL", (owner, time.time() + 600))
    process.finished.clear()

    summary = watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1,
                           process=process)

    assert summary.recovered == 2 and summary.done == 1
    assert process.finished == [b_output]  # a.mp4 was not stylized again
    assert states(out) == [("a.mp4", "scream", "done"), ("b.mp4", "scream", "done")]
    assert "recovered" in folder_status(out)[0].note
    assert a_output.is_file() and frame_count(b_output) >= 12
    assert not partial.exists() and temp_files(out) == []


def test_move_done_and_failed_inputs(tmp_path, samples):
    inbox = make_inbox(tmp_path, samples, {"sub/a.mp4": "cup.mp4"})
    (inbox / "bad.mp4").write_text("nope")
    out, done, failed = tmp_path / "out", tmp_path / "done", tmp_path / "failed"
    watch_folder(inbox, out, ["scream", "wave"], FAST, once=True, settle=0.1,
                 move_done=done, move_failed=failed, process=CountingProcess())
    assert (done / "sub" / "a.mp4").is_file() and not (inbox / "sub" / "a.mp4").exists()
    assert (failed / "bad.mp4").is_file()
    error = (failed / "bad.mp4.error.txt").read_text()
    assert "not a video" in error and len(error.splitlines()) == 2  # one line per style
    moved = {j.style: j.moved_to for j in folder_status(out) if j.input.endswith("a.mp4")}
    assert moved == {"scream": str(done / "sub" / "a.mp4"), "wave": str(done / "sub" / "a.mp4")}


def test_retry_failed_runs_failed_jobs_again(tmp_path, samples):
    inbox = make_inbox(tmp_path, samples, {"a.mp4": "cup.mp4"})
    out = tmp_path / "out"
    calls = []

    def flaky(src, dst):
        calls.append(src)
        if len(calls) == 1:
            raise InputError(src, "disk hiccup")

    process = CountingProcess(before=flaky)
    first = watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1, process=process)
    assert first.failed == 1 and "disk hiccup" in folder_status(out)[0].error
    watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1, process=process)
    assert len(calls) == 1  # a failed job is not retried by itself
    retry = watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1,
                         retry_failed=True, process=process)
    assert retry.done == 1 and states(out) == [("a.mp4", "scream", "done")]


def test_cli_watch_once_and_status_json(tmp_path, samples):
    from vidstyle.cli import app

    inbox = make_inbox(tmp_path, samples, {"a.mp4": "cup.mp4"})
    (inbox / "bad.mp4").write_text("nope")
    out, state = tmp_path / "out", tmp_path / "state"
    config = tmp_path / "fast.toml"
    config.write_text('duration = 0.5\nmax_size = 64\nprecision = "fp32"\n'
                      '[output]\npreset = "ultrafast"\n')
    runner = CliRunner()
    result = runner.invoke(app, ["watch", str(inbox), "--out", str(out), "--style", "scream",
                                 "--config", str(config), "--state", str(state),
                                 "--settle", "0.1", "--once", "--json"])
    assert result.exit_code == 1, result.output  # --once exits 1 when a job failed
    assert json.loads(result.stdout)["done"] == 1
    assert (state / "ledger.sqlite").is_file() and (out / "a.scream.mp4").is_file()
    status = runner.invoke(app, ["status", str(inbox), "--json"])  # found via the pointer
    jobs = {Path(j["input"]).name: j for j in json.loads(status.stdout)}
    assert jobs["a.mp4"]["state"] == "done" and jobs["bad.mp4"]["state"] == "failed"
    assert "not a video" in jobs["bad.mp4"]["error"]


# -- separate processes (the real CLI), killed and restarted ---------------------------------

WORKER = r"""
import os, sys
import vidstyle.api

real = vidstyle.api.stylize_video
def logged(src, dst=None, settings=None, **kw):
    result = real(src, dst, settings, **kw)
    with open(os.environ["WATCH_LOG"], "a") as log:
        log.write(f"{os.getpid()} {dst}\n")
    return result

vidstyle.api.stylize_video = logged
from vidstyle.cli import main
sys.argv = ["vidstyle", "watch", *sys.argv[1:]]
main()
"""


class WorkerFarm:
    """Starts `vidstyle watch` processes on one inbox and reads what they did."""

    def __init__(self, tmp_path: Path, seconds: float) -> None:
        self.inbox, self.out = tmp_path / "inbox", tmp_path / "out"
        self.inbox.mkdir(exist_ok=True)
        self.log = tmp_path / "finished.log"
        self.config = tmp_path / "job.toml"
        self.config.write_text(f'duration = {seconds}\nmax_size = 64\nbatch = 2\n'
                               'precision = "fp32"\n[output]\npreset = "ultrafast"\n')

    def start(self, *extra: str) -> subprocess.Popen:
        args = [str(self.inbox), "--out", str(self.out), "--config", str(self.config),
                "--settle", "0.2", "--quiet", *extra]
        env = {**os.environ, "WATCH_LOG": str(self.log)}
        return subprocess.Popen([sys.executable, "-c", WORKER, *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def finished(self) -> list[tuple[str, str]]:
        if not self.log.exists():
            return []
        return [tuple(line.split(" ", 1)) for line in self.log.read_text().splitlines()]

    def running_with_temp(self) -> bool:
        ledger = self.out / ".vidstyle" / "ledger.sqlite"
        if not ledger.exists():
            return False
        with Ledger(ledger) as db:
            running = db.jobs(["running"])
        return bool(running) and any(temp_files(self.out, j.dst) for j in running)


@pytest.mark.slow
def test_kill_9_mid_job_then_restart_finishes_every_file_exactly_once(tmp_path, samples):
    farm = WorkerFarm(tmp_path, seconds=1.5)
    for i, sample in enumerate(["cup.mp4", "box.mp4", "bigbuckbunny.mp4", "cup.mp4"]):
        shutil.copy(samples / sample, farm.inbox / f"clip{i}.mp4")
    first = farm.start("--once")
    wait_for(lambda: farm.running_with_temp() or first.poll() is not None, step=0.02)
    assert first.poll() is None, first.communicate()
    first.kill()  # SIGKILL: no cleanup of any kind
    first.wait()
    with Ledger(farm.out / ".vidstyle" / "ledger.sqlite") as ledger:
        (killed,) = ledger.jobs(["running"])
    assert temp_files(farm.out, killed.dst)  # it really died mid-write

    second = farm.start("--once")
    assert second.wait(timeout=300) == 0, second.communicate()

    jobs = folder_status(farm.out)
    assert len(jobs) == 4 and all(j.state == "done" for j in jobs)
    outputs = [dst for _, dst in farm.finished()]
    assert len(outputs) == len(set(outputs)) == 4 - int(not killed.dst.exists())
    assert next(j for j in jobs if j.id == killed.id).attempts == 2
    for job in jobs:
        assert frame_count(job.dst) >= 30
    assert temp_files(farm.out) == []


@pytest.mark.slow
def test_two_watchers_split_the_work_without_duplicates(tmp_path, samples):
    farm = WorkerFarm(tmp_path, seconds=1.0)
    for i in range(8):
        shutil.copy(samples / ["cup.mp4", "box.mp4"][i % 2], farm.inbox / f"clip{i}.mp4")
    workers = [farm.start("--once") for _ in range(2)]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.communicate()
    finished = farm.finished()
    outputs = [dst for _, dst in finished]
    assert len(outputs) == len(set(outputs)) == 8
    assert len({pid for pid, _ in finished}) == 2  # both took a share
    assert all(j.state == "done" and j.attempts == 1 for j in folder_status(farm.out))


@pytest.mark.slow
def test_sigterm_stops_within_seconds_and_requeues(tmp_path, samples):
    farm = WorkerFarm(tmp_path, seconds=15.0)
    shutil.copy(samples / "box.mp4", farm.inbox / "box.mp4")
    worker = farm.start()  # not --once: it would watch forever
    wait_for(farm.running_with_temp, step=0.02)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0  # a bound against a hang, not a measurement
    (job,) = folder_status(farm.out)
    # Cancelled mid-job (a 15 s clip cannot have finished): requeued, nothing written.
    assert job.state == "queued" and job.note == "cancelled"
    assert temp_files(farm.out) == [] and not job.dst.exists()


# -- issue 13: what a watched folder may hold -------------------------------------------


def test_fifos_and_devices_in_the_inbox_are_skipped_with_a_warning(tmp_path, samples, caplog):
    # A FIFO (or a link to /dev/zero) used to block the watcher forever.
    inbox = make_inbox(tmp_path, samples, {"a.mp4": "cup.mp4"})
    os.mkfifo(inbox / "pipe.mp4")
    (inbox / "zero.mp4").symlink_to("/dev/zero")
    out = tmp_path / "out"
    events, done = [], threading.Event()
    results = []

    def watch():
        results.append(watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1,
                                    process=CountingProcess(), on_event=events.append))
        done.set()

    with caplog.at_level("WARNING"):
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        assert done.wait(60), "the watcher blocked on a FIFO or a device"
    assert results[0].done == 1 and results[0].failed == 0
    skipped = [e.message for e in events if e.kind == "skipped"]
    assert len(skipped) == 2 and any("named pipe" in m for m in skipped)
    assert any("device" in r.getMessage() for r in caplog.records)
    assert [Path(j.input).name for j in folder_status(out)] == ["a.mp4"]


def test_out_inside_the_inbox_does_not_feed_on_itself(tmp_path, samples):
    # `watch IN --out IN` once stylized its own outputs ~30 generations deep.
    inbox = make_inbox(tmp_path, samples, {"a.mp4": "cup.mp4"})
    process = CountingProcess()
    for _ in range(2):
        watch_folder(inbox, inbox, ["scream"], FAST, once=True, settle=0.1, process=process)
    assert [p.name for p in process.finished] == ["a.scream.mp4"]
    assert sorted(p.name for p in inbox.glob("*.mp4")) == ["a.mp4", "a.scream.mp4"]
    assert [Path(j.input).name for j in folder_status(inbox)] == ["a.mp4"]


def test_a_copy_of_an_output_dropped_in_the_inbox_is_not_an_input(tmp_path, samples):
    out = tmp_path / "out"
    inbox = make_inbox(tmp_path, samples, {"a.mp4": "box.mp4"})
    process = CountingProcess()
    watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1, process=process)
    shutil.copy(out / "a.scream.mp4", inbox / "renamed.mp4")  # the mark travels with it
    events = []
    watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1, process=process,
                 on_event=events.append)
    assert len(process.finished) == 1
    assert any(e.kind == "skipped" and "renamed.mp4" in e.message for e in events)
    # ...unless the user asks for vidstyle's own files too
    watch_folder(inbox, out, ["scream"], FAST, once=True, settle=0.1, process=process,
                 include_outputs=True)
    assert [p.name for p in process.finished] == ["a.scream.mp4", "renamed.scream.mp4"]


@pytest.mark.parametrize("state", [
    "idle-with-fifo",
    pytest.param("settling", marks=pytest.mark.slow),
    pytest.param("hashing", marks=pytest.mark.slow),
])
def test_sigterm_ends_watch_within_5_seconds_in_every_state(tmp_path, state):
    farm = WorkerFarm(tmp_path, seconds=1.0)
    writer = None
    if state == "idle-with-fifo":
        os.mkfifo(farm.inbox / "pipe.mp4")
        (farm.inbox / "zero.mp4").symlink_to("/dev/zero")
    elif state == "settling":  # a file that keeps growing never settles
        writer = subprocess.Popen([sys.executable, "-c", (
            "import time, sys\n"
            "with open(sys.argv[1], 'wb') as f:\n"
            "    while True:\n"
            "        f.write(b'x' * 1000); f.flush(); time.sleep(0.05)\n"),
            str(farm.inbox / "growing.mp4")])
    else:  # a settled 8 GiB (sparse) file: hashing it takes longer than 5 s
        with open(farm.inbox / "huge.mp4", "wb") as f:
            f.truncate(8 << 30)
    worker = farm.start()
    try:
        # Past start-up (imports, ledger), then well inside the state.
        wait_for(lambda: (farm.inbox / POINTER_NAME).exists() or worker.poll() is not None)
        time.sleep(2)
        assert worker.poll() is None, worker.communicate()
        sent = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        # A FIFO or /dev/zero used to block the watcher forever: a clean exit at all is
        # the fast check. The 5 s bound is a timing, so it is asserted only in the slow
        # runs (a loaded CI machine can stretch any wall-clock figure).
        assert worker.wait(timeout=30) == 0
        if state != "idle-with-fifo":
            assert time.monotonic() - sent < 5
    finally:
        if worker.poll() is None:
            worker.kill()
        if writer is not None:
            writer.kill()
            writer.wait()
    assert temp_files(farm.out) == []
