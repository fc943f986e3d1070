"""Style schedules: parsing and checking, the scheduled engine, and a scheduled video.

Real shipped styles at 64 px (the 26-style network's presets for a style-space
crossfade, Johnson networks for a blended-output one) on frames of samples/cup.mp4.
"""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidstyle.api import Stylizer
from vidstyle.cli import app
from vidstyle.config import Settings
from vidstyle.engines.factory import make_temporal_filter
from vidstyle.engines.fast import FastEngine
from vidstyle.engines.scheduled import ScheduledEngine, build_scheduled_engine
from vidstyle.errors import SettingsError, StyleError
from vidstyle.evaluate import read_frames
from vidstyle.styles import load_style, style_slug
from vidstyle.styles.schedule import parse_schedule, parse_time
from vidstyle.styles.spec import is_schedule

CPU = torch.device("cpu")


def settings(style: str, **changes) -> Settings:
    fields = {"device": "cpu", "max_size": 64, "temporal": "off", "batch": 4, **changes}
    return Settings(style=style, **fields).replace(
        output={"preset": "ultrafast", "overwrite": True})


@pytest.fixture(scope="module")
def frame(samples) -> torch.Tensor:
    """One real frame, 80x60, as the engine takes it (1 x H x W x 3 uint8)."""
    first = next(read_frames(samples / "cup.mp4"))
    return torch.from_numpy(np.ascontiguousarray(first[::8, ::8]))[None]


# -- parsing -------------------------------------------------------------------------------


def test_times_in_seconds_and_clock_notation():
    assert parse_time("12.5") == 12.5
    assert parse_time("1:30") == 90.0
    assert parse_time("0:01:30.250") == pytest.approx(90.25)
    assert parse_time("1:00:00") == 3600.0
    schedule = parse_schedule("0:scream, 12.5:wave, 0:00:40:udnie, 41:preset:3", 2.0)
    assert [(c.time, c.style) for c in schedule.cues] == [
        (0.0, "scream"), (12.5, "wave"), (40.0, "udnie"), (41.0, "preset:3")]
    assert is_schedule("0:scream, 12.5:wave") and is_schedule("edit.toml")
    assert not is_schedule("scream") and not is_schedule("scream:0.6,wave:0.4")
    assert not is_schedule("preset:3")
    assert style_slug("0:scream, 12.5:wave, 40:scream") == "scream-wave"


def test_transitions_are_centred_and_never_overlap():
    schedule = parse_schedule("0:a, 10:b, 11:c", 4.0)
    (s1, e1, *_), (s2, e2, *_) = schedule.changes()
    assert (s1, e1) == (9.5, 10.5)  # centred: only half the 1 s gap to the next cue
    assert (s2, e2) == (10.5, 11.5)
    assert schedule.mix_at(5.0) == ("a", "a", 1.0)
    assert schedule.mix_at(9.0) == ("a", "a", 1.0)
    assert schedule.mix_at(10.0) == ("a", "b", 0.5)
    assert schedule.mix_at(20.0) == ("c", "c", 1.0)
    assert parse_schedule("0:a, 10:b", 0.0).mix_at(9.999) == ("a", "a", 1.0)


@pytest.mark.parametrize("spec, message", [
    ("0:scream, 5:wave, 3:udnie", "times out of order: 0:00:03.000 (udnie)"),
    ("0:scream, 5:scream, 5:wave", "times out of order"),
    ("0:scream, 1:75:wave", "'1:75' is not a time"),
    ("0:scream, 4:nosuchstyle", "at 0:00:04.000: unknown style 'nosuchstyle'"),
    ("0:scream, 4:", "is not time:style"),
])
def test_bad_schedules_are_one_line_errors_before_any_work(spec, message, samples, tmp_path):
    with pytest.raises(StyleError, match=re.escape(message)) as caught:
        Stylizer(settings(spec)).video(samples / "cup.mp4", tmp_path / "out.mp4")
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_a_cue_past_the_end_and_gatys_are_refused(samples, tmp_path):
    with pytest.raises(StyleError, match=r"cue 0:00:09.000 \(wave\) is past the end"):
        Stylizer(settings("0:scream, 9:wave")).video(samples / "cup.mp4", tmp_path / "o.mp4")
    assert not list(tmp_path.iterdir())
    with pytest.raises(SettingsError, match="need --engine fast"):
        build_scheduled_engine(settings("0:scream, 1:wave", engine="gatys"), CPU,
                               torch.float32)


def test_schedule_file(tmp_path):
    edit = tmp_path / "edit.toml"
    edit.write_text('transition = 0.5\n[[cue]]\nat = 0\nstyle = "scream"\n'
                    '[[cue]]\nat = "0:00:02.5"\nstyle = "preset:3"\n')
    schedule = parse_schedule(str(edit), 2.0)
    assert schedule.transition == 0.5 and schedule.cues[1].time == 2.5
    edit.write_text('[[cue]]\nat = 0\nstyle = "scream"\ncolour = "red"\n')
    with pytest.raises(StyleError, match="cue 1 needs exactly at"):
        parse_schedule(str(edit), 2.0)
    with pytest.raises(StyleError, match="schedule file not found"):
        parse_schedule(str(tmp_path / "missing.toml"), 2.0)


# -- the engine ----------------------------------------------------------------------------


def scheduled(spec: str, transition: float) -> ScheduledEngine:
    return build_scheduled_engine(settings(spec, transition=transition), CPU, torch.float32)


def single(style: str, frame: torch.Tensor) -> torch.Tensor:
    engine = FastEngine(load_style(style, device=CPU), CPU, torch.float32, max_size=64)
    return engine.stylize(frame)


def run_at(engine: ScheduledEngine, frame: torch.Tensor, times: list[float]) -> list:
    engine.reset()
    engine.times.extend(times)
    return list(engine.stylize(frame.expand(len(times), -1, -1, -1).contiguous()))


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().mean().item()


@pytest.mark.parametrize("first, second", [("preset:2", "preset:7"), ("scream", "wave")],
                         ids=["style-space", "blended-outputs"])
def test_each_time_has_the_scheduled_style_and_a_transition_is_monotonic(
    frame, first, second
):
    engine = scheduled(f"0:{first}, 2:{second}", transition=1.0)  # fades over 1.5..2.5 s
    a, b = single(first, frame)[0], single(second, frame)[0]
    assert distance(a, b) > 10  # the two styles really differ
    times = [0.0, 1.4, *np.linspace(1.5, 2.5, 11).tolist()[1:-1], 2.6, 3.0]
    out = run_at(engine, frame, times)
    # Same style as a single-style run (up to the batch's rounding: one frame against 13).
    for image in out[:2]:
        assert distance(image, a) < 0.5
    for image in out[-2:]:
        assert distance(image, b) < 0.5
    to_a = [distance(image, a) for image in out]
    to_b = [distance(image, b) for image in out]
    fade = slice(1, len(times) - 1)
    assert all(x <= y + 0.5 for x, y in zip(to_a[fade], to_a[fade][1:], strict=False)), to_a
    assert all(x >= y - 0.5 for x, y in zip(to_b[fade], to_b[fade][1:], strict=False)), to_b
    assert to_a[fade][0] < to_a[fade][-1] and to_b[fade][0] > to_b[fade][-1]


@pytest.mark.slow
def test_the_temporal_filter_carries_across_a_cut_without_a_flash(frame):
    """With a hard cut and the blend filter, the first frame of the new style is still
    pulled toward the old one (no reset, so no frame of raw texture)."""
    job = settings("0:scream, 1:wave", transition=0.0, temporal="blend")
    engine = build_scheduled_engine(job, CPU, torch.float32, make_temporal_filter(job))
    out = run_at(engine, frame, [0.0, 0.5, 0.96, 1.0, 1.04])
    wave = single("wave", frame)[0]
    assert distance(out[3], wave) > 0.5 * distance(single("scream", frame)[0], wave)
    assert distance(out[4], wave) < distance(out[3], wave)


@pytest.mark.slow
def test_a_scheduled_video_follows_its_schedule(samples, tmp_path):
    src = samples / "cup.mp4"
    dst = tmp_path / "scheduled.mp4"
    job = settings("0:scream, 1:wave", transition=0.0, duration=2.0)
    result = Stylizer(job).video(src, dst)
    assert dst.name == "scheduled.mp4" and result.frames > 0
    one = Stylizer(settings("scream", duration=2.0)).video(src, tmp_path / "a.mp4").dst
    two = Stylizer(settings("wave", duration=2.0)).video(src, tmp_path / "b.mp4").dst
    frames = [list(read_frames(p)) for p in (dst, one, two)]
    rate = result.frames / 2.0
    for i, (mixed, a, b) in enumerate(zip(*frames, strict=True)):
        time = i / rate
        if abs(time - 1.0) < 0.1:
            continue  # the encoder's reference frames straddle the cut
        near, far = (a, b) if time < 1.0 else (b, a)
        assert np.abs(mixed.astype(int) - near).mean() < 0.25 * np.abs(
            mixed.astype(int) - far).mean(), i


@pytest.mark.slow
def test_preview_shows_frames_around_each_change(samples, tmp_path):
    out = tmp_path / "changes.png"
    result = CliRunner().invoke(app, [
        "preview", str(samples / "cup.mp4"), "--style", "0:scream, 3:wave",
        "-o", str(out), "--size", "96",
    ])
    assert result.exit_code == 0, result.output
    sheet = cv2.imread(str(out))
    assert sheet.shape[1] > 5 * 96 * 0.9  # five moments around the one change
    assert "wrote" in result.output
