"""Finding ready inputs: names, settling, open-for-write detection, probing, hashing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from vidstyle.files import content_hash, temp_files, temp_pid
from vidstyle.watch import scan
from vidstyle.watch.scan import (
    SettleTracker,
    find_videos,
    open_for_writing,
    probe_error,
)

needs_proc = pytest.mark.skipif(not scan.can_see_open_files(), reason="needs Linux /proc")


def test_find_videos_recurses_skips_hidden_other_types_and_excluded(tmp_path):
    for name in ("a.mp4", "sub/b.MOV", "sub/deep/c.mkv", "notes.txt", ".hidden.mp4",
                 ".cache/d.mp4", "styled/e.scream.mp4", "sub/.clip.mp4.vidstyle-tmp-1-ab.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = find_videos(tmp_path, exclude=[tmp_path / "styled"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.mp4", "sub/b.MOV", "sub/deep/c.mkv"
    ]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_settle_tracker_waits_for_size_and_mtime_to_hold_still(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"a")
    clock = FakeClock()
    tracker = SettleTracker(2.0, clock)
    assert tracker.observe([clip]) == ([], [clip])
    clock.now += 1.5
    with open(clip, "ab") as f:  # grows: the clock starts again
        f.write(b"b")
    assert tracker.observe([clip])[0] == []
    clock.now += 1.9
    assert tracker.observe([clip])[0] == []
    clock.now += 0.2
    settled, moving = tracker.observe([clip])
    assert [p for p, _ in settled] == [clip] and moving == []
    assert settled[0][1].size == 2
    tracker.restart(clip)  # found open for writing: wait a full settle time again
    assert tracker.observe([clip])[0] == []


def test_settle_tracker_forgets_vanished_files(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"a")
    tracker = SettleTracker(0.0)
    assert len(tracker.observe([clip])[0]) == 1
    clip.unlink()
    assert tracker.observe([clip]) == ([], [])


@needs_proc
def test_open_for_writing_sees_writers_not_readers(tmp_path):
    writing, reading, closed = (tmp_path / n for n in ("w.mp4", "r.mp4", "c.mp4"))
    for path in (writing, reading, closed):
        path.write_bytes(b"data")
    with open(writing, "ab"), open(reading, "rb"):
        assert open_for_writing([writing, reading, closed]) == {writing}
    with open(writing, "r+b"):  # O_RDWR counts as writing
        assert open_for_writing([writing]) == {writing}
    assert open_for_writing([writing, reading, closed]) == set()


@needs_proc
def test_open_for_writing_sees_another_process(tmp_path):
    clip = tmp_path / "clip.mp4"
    child = subprocess.Popen(
        [sys.executable, "-c",
         f"import sys\nf = open({str(clip)!r}, 'wb')\nprint('open', flush=True)\n"
         "sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout.readline().strip() == "open"
        assert open_for_writing([clip]) == {clip}
    finally:
        child.communicate("")
    assert open_for_writing([clip]) == set()


def test_without_proc_open_check_falls_back_to_settle(tmp_path, monkeypatch):
    monkeypatch.setattr(scan, "PROC", tmp_path / "no-proc")
    clip = tmp_path / "clip.mp4"
    with open(clip, "wb"):
        assert open_for_writing([clip]) == set()


def test_probe_accepts_real_video_and_names_the_file_for_bad_ones(tmp_path, samples):
    assert probe_error(samples / "cup.mp4") is None
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    # Big Buck Bunny keeps its index (moov) at the end: half a copy cannot be opened.
    truncated = tmp_path / "half.mp4"
    data = (samples / "bigbuckbunny.mp4").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    for bad in (text, truncated):
        error = probe_error(bad)
        assert error is not None and str(bad) in error and "\n" not in error


def test_content_hash_is_streamed_blake2b_of_the_whole_file(tmp_path, samples):
    clip = tmp_path / "clip.mp4"
    shutil.copy(samples / "cup.mp4", clip)  # 1.5 MB: more than one read chunk
    expected = hashlib.blake2b(clip.read_bytes(), digest_size=16).hexdigest()
    assert content_hash(clip) == expected
    with open(clip, "r+b") as f:  # one byte changed at the very end
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    assert content_hash(clip) != expected


def test_temp_names_carry_the_writer_pid(tmp_path):
    dst = tmp_path / "clip.scream.mp4"
    temp = tmp_path / f".clip.scream.mp4.vidstyle-tmp-{os.getpid()}-ab12cd34.mp4"
    other = tmp_path / ".other.wave.mp4.vidstyle-tmp-77-ffff0000.mp4"
    for path in (temp, other, dst):
        path.write_bytes(b"x")
    assert temp_pid(temp) == os.getpid() and temp_pid(dst) is None
    assert temp_files(tmp_path, dst) == [temp]
    assert temp_files(tmp_path) == sorted([temp, other])
