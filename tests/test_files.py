"""Names and bytes on disk: temporary names, output checks, sweeping, input expansion."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from vidstyle.errors import InputError, OutputError, SettingsError
from vidstyle.files import (
    NAME_MAX,
    TEMP_MARKER,
    atomic_output,
    check_output_path,
    content_hash,
    expand_inputs,
    output_folder,
    sweep_stale_temporaries,
    temp_path_for,
    temp_pid,
)


@pytest.mark.parametrize("stem_length", [10, 236, 250])
def test_temporary_names_fit_name_max_whatever_the_target(tmp_path, stem_length):
    # A 236-character stem made the temporary name 44 bytes too long (ENAMETOOLONG).
    target = tmp_path / ("é" * (stem_length // 2) + "x" * (stem_length % 2) + ".scream.mp4")
    temp = temp_path_for(target)
    assert len(temp.name.encode()) <= NAME_MAX
    assert temp.suffix == ".mp4" and temp.name.startswith(".") and TEMP_MARKER in temp.name
    assert temp_pid(temp) == os.getpid()
    temp.write_bytes(b"x")  # the file system takes it
    temp.unlink()


def test_an_output_name_longer_than_name_max_is_refused_in_one_line(tmp_path):
    target = tmp_path / ("x" * 250 + ".scream.mp4")
    with pytest.raises(OutputError, match="bytes long") as err:
        check_output_path(target, overwrite=False)
    assert "\n" not in str(err.value)


def test_an_output_that_is_or_aliases_an_input_is_refused_even_with_overwrite(tmp_path):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"precious")
    hard = tmp_path / "hard.mp4"
    os.link(src, hard)
    soft = tmp_path / "soft.mp4"
    soft.symlink_to(src)
    for dst in (src, hard, soft, tmp_path / "." / "clip.mp4"):
        with pytest.raises(OutputError, match="overwrite the input"):
            check_output_path(dst, overwrite=True, inputs=[src])
    other = tmp_path / "other.mp4"
    refused = pytest.raises(OutputError, match="overwrite the input")
    with refused, atomic_output(other, overwrite=True, inputs=[src, other]):
        pass
    assert src.read_bytes() == b"precious"


def test_a_folder_named_as_output_is_refused_with_overwrite_too(tmp_path):
    folder = tmp_path / "out.mp4"
    folder.mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        check_output_path(folder, overwrite=True)


def test_output_folder_that_is_a_file_is_one_line(tmp_path):
    taken = tmp_path / "styled"
    taken.write_bytes(b"not a folder")
    with pytest.raises(OutputError, match="not a folder"), output_folder(taken):
        pass
    with output_folder(tmp_path / "a" / "b"):
        (tmp_path / "a" / "b" / "kept.mp4").write_bytes(b"x")
    assert (tmp_path / "a" / "b").is_dir()
    with output_folder(tmp_path / "c" / "d"):
        assert (tmp_path / "c" / "d").is_dir()
    assert not (tmp_path / "c").exists()  # created for a run that wrote nothing: removed


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_atomic_output_sweeps_stale_temporaries_of_dead_writers(tmp_path):
    # After a kill -9 the hidden temporary stayed; a later apply into the folder must
    # remove it, and leave a live writer's alone.
    target = tmp_path / "clip.scream.mp4"
    mine = temp_path_for(target)
    dead = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-"))
    live_pid = os.getppid()
    live = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{live_pid}-"))
    dead.write_bytes(b"partial")
    live.write_bytes(b"being written")
    with atomic_output(target, overwrite=False) as tmp:
        assert not dead.exists() and live.exists()
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name])
    assert sweep_stale_temporaries(tmp_path) == []


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError), atomic_output(target, overwrite=False) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("encoder died")
    assert list(tmp_path.iterdir()) == []


def test_expand_inputs_skips_non_regular_files_and_what_skip_names(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"a")
    (tmp_path / "b.scream.mp4").write_bytes(b"b")
    os.mkfifo(tmp_path / "pipe.mp4")
    (tmp_path / "zero.mp4").symlink_to("/dev/zero")
    (tmp_path / ".hidden.mp4").write_bytes(b"h")
    skipped: list = []
    found = expand_inputs([tmp_path], skip=lambda p: "ours" if "scream" in p.name else None,
                          skipped=skipped)
    assert [p.name for p in found] == ["a.mp4"]
    reasons = {p.name: why for p, why in skipped}
    assert reasons == {"b.scream.mp4": "ours", "pipe.mp4": "is a named pipe (FIFO), not a file",
                       "zero.mp4": "is a device, not a file"}
    # A file named on its own is kept (and refused later with its own reason).
    assert expand_inputs([tmp_path / "b.scream.mp4"], skip=lambda p: "ours") == [
        tmp_path / "b.scream.mp4"]
    with pytest.raises(SettingsError):
        expand_inputs([])


def test_content_hash_refuses_a_fifo_and_stops_when_asked(tmp_path):
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    done = threading.Event()

    def hash_fifo():
        with pytest.raises(InputError, match="named pipe"):
            content_hash(fifo)
        done.set()

    thread = threading.Thread(target=hash_fifo, daemon=True)
    thread.start()
    thread.join(5)
    assert done.is_set()  # refused at once, never blocked in open()
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (3 << 20))
    with pytest.raises(InterruptedError):
        content_hash(big, stop=lambda: True)
    assert len(content_hash(big)) == 32
