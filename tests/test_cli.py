"""The CLI's wiring: flags reach the API, errors are one line, exits are non-zero."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from vidstyle.cli import app

runner = CliRunner()
FAST = ["--preset", "ultrafast", "--max-size", "96"]


def test_info_json_lists_devices_and_encoders():
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["devices"][0]["device"] == "cpu"
    assert "libx264" in data["encoders"]


def test_missing_input_is_one_line_and_exit_1(tmp_path):
    missing = tmp_path / "missing.mp4"
    result = runner.invoke(app, ["apply", str(missing), "--style", "scream"])
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(missing) in lines[0] and "not found" in lines[0]
    assert "Traceback" not in result.output


def test_unknown_device_exits_2_before_touching_files(tmp_path, samples):
    result = runner.invoke(app, ["apply", str(samples / "cup.mp4"), "--device", "tpu",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown device 'tpu'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_config_key_is_reported(tmp_path, samples):
    config = tmp_path / "x.toml"
    config.write_text("bach = 3\n")
    result = runner.invoke(app, ["apply", str(samples / "cup.mp4"), "--config", str(config)])
    assert result.exit_code == 2 and "bach" in result.stderr


def test_unknown_style_names_the_style(tmp_path, samples):
    result = runner.invoke(app, ["apply", str(samples / "cup.mp4"), "--style", "screem",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "screem" in result.stderr and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_many_inputs_one_bad_the_rest_done(tmp_path, samples):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    out = tmp_path / "styled"
    result = runner.invoke(app, [
        "apply", str(bad), str(samples / "cup.mp4"), "--style", "scream", "--out", str(out),
        "--duration", "0.3", "--json", *FAST,
    ])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert [r["src"] for r in summary["results"]] == [str(samples / "cup.mp4")]
    assert summary["failures"][0]["src"] == str(bad)
    assert [p.name for p in out.iterdir()] == ["cup.scream.mp4"]


def test_apply_on_a_sample_with_a_shipped_style(tmp_path, samples):
    out = tmp_path / "cup.scream.mp4"
    result = runner.invoke(app, ["apply", str(samples / "cup.mp4"), "--style", "scream",
                                 "-o", str(out), "--duration", "0.5", "--quiet", *FAST])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_partial_output(tmp_path, samples, signum):
    out = tmp_path / "out.mp4"
    process = subprocess.Popen(
        [sys.executable, "-m", "vidstyle", "apply", str(samples / "bigbuckbunny.mp4"),
         "--style", "scream", "-o", str(out), "--preset", "ultrafast"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 60
    # Wait until the temporary output exists: the job is mid-way.
    while time.monotonic() < deadline and not any(tmp_path.iterdir()):
        time.sleep(0.05)
    assert any(tmp_path.iterdir()), "the job never started writing"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


# -- issue 13: data loss is never silent, user errors are one line ------------------------


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_quiet_still_warns_about_a_dropped_stream_and_exits_3(tmp_path):
    sys.path.insert(0, os.path.dirname(__file__))
    from mediagen import Audio, Spec, make_media

    # A Matroska file named .mp4: its ASS subtitles cannot go into MP4.
    src = make_media(tmp_path / "clip.mp4", Spec("mkv", audio=(Audio("aac"),), subtitles=True))
    result = runner.invoke(app, ["apply", str(src), "--style", "scream", "--quiet", "--json",
                                 *FAST])
    assert result.exit_code == 3, result.output
    assert "stream #2 dropped" in result.stderr and "ass subtitles" in result.stderr
    (done,) = json.loads(result.stdout)["results"]
    assert [s["fate"] for s in done["streams"]] == ["stylized", "copied", "dropped"]
    assert done["data_lost"] is True


def test_apply_dir_twice_does_not_stylize_its_own_outputs(tmp_path, samples):
    import shutil

    shutil.copy(samples / "cup.mp4", tmp_path / "cup.mp4")
    args = ["apply", str(tmp_path), "--style", "scream", "--duration", "0.2", *FAST]
    assert runner.invoke(app, args).exit_code == 0
    second = runner.invoke(app, [*args, "--overwrite"])
    assert second.exit_code == 0 and "output of vidstyle" in second.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cup.mp4", "cup.scream.mp4"]


@pytest.mark.parametrize(("extra", "words"), [
    (["--preset", "fastest"], "preset"),
    (["--codec", "libx264", "-o", "{tmp}/x.webm"], "cannot hold libx264"),
    (["--out", "{tmp}/file"], "not a folder"),
    (["--start", "99"], "past the end"),
])
def test_user_errors_are_one_line_before_any_work(tmp_path, samples, extra, words):
    (tmp_path / "file").write_bytes(b"a regular file")
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    result = runner.invoke(app, ["apply", str(samples / "cup.mp4"), "--style", "scream",
                                 "--max-size", "96", *extra])
    assert result.exit_code in (1, 2), result.output
    lines = _lines(result.stderr)
    assert len(lines) == 1 and words in lines[0], lines
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
