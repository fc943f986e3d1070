"""Progress: the smoothed rate behind the ETA, and the display on a terminal and off one."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from vidstyle.progress import (
    RATE_TIME_CONSTANT,
    ProgressDisplay,
    ProgressEvent,
    SmoothedRate,
    Throttle,
    format_eta,
)


def feed(rate: SmoothedRate, samples):
    """(elapsed, frames) pairs into `rate`; the rate after each."""
    return [rate.update(t, n) for t, n in samples]


def test_a_steady_rate_is_reported_exactly_whatever_the_update_spacing():
    rate = SmoothedRate()
    feed(rate, [(0.0, 0), (0.1, 1), (0.3, 3), (0.4, 4), (1.9, 19), (2.0, 20), (7.5, 75)])
    assert rate.rate == pytest.approx(10.0)
    assert rate.eta(50) == pytest.approx(5.0)


def test_batches_landing_in_some_updates_only_do_not_make_the_eta_jump():
    # 4 frames per second, arriving as one batch of 4 every fourth update (0.25 s apart):
    # the instantaneous rate swings between 0 and 16 fps.
    rate, frames, etas = SmoothedRate(), 0, []
    for step in range(4 * 120):
        if step % 4 == 3:
            frames += 4
        rate.update(step * 0.25, frames)
        if step * 0.25 >= 60:  # after the first minute
            etas.append(rate.eta(1000 - frames) + step * 0.25)  # predicted finish time
    # The predicted end (250 s) moves by less than 8 % of the run; from the raw rates
    # it would swing between 62 s and never.
    assert max(etas) - min(etas) < 0.08 * 250
    assert rate.rate == pytest.approx(4.0, rel=0.05)


def test_a_lasting_change_of_speed_shows_within_three_time_constants():
    rate = SmoothedRate()
    feed(rate, [(t, 10 * t) for t in range(60)])  # 10 fps for a minute
    base = 590
    feed(rate, [(59 + t, base + 5 * t) for t in range(1, round(3 * RATE_TIME_CONSTANT) + 1)])
    assert rate.rate == pytest.approx(5.0, rel=0.06)  # 95 % of the way after 3 tau


def test_the_average_depends_on_time_not_on_how_often_updates_come():
    fine, coarse = SmoothedRate(), SmoothedRate()
    speed = lambda t: 10 if t < 30 else 4  # noqa: E731
    for rate, dt in ((fine, 0.25), (coarse, 2.0)):
        frames, t = 0.0, 0.0
        rate.update(0.0, 0)
        while t < 45:
            frames += speed(t) * dt
            t += dt
            rate.update(t, round(frames))
    assert fine.rate == pytest.approx(coarse.rate, rel=0.05)


def test_no_eta_before_a_rate_is_known():
    rate = SmoothedRate()
    rate.update(0.0, 0)
    assert rate.eta(100) is None
    assert format_eta(None) == "-:--:--"
    assert format_eta(452) == "0:07:32"
    assert format_eta(3 * 3600 + 5) == "3:00:05"


def test_throttle_lets_the_first_and_forced_events_through():
    throttle = Throttle(interval=3600)
    assert throttle.ready()
    assert not throttle.ready()
    assert throttle.ready(force=True)


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(force_terminal=True, file=out, width=100), out


def events(path: Path, estimated: int, decoded: int):
    yield ProgressEvent(path, 0, estimated, 0.0, kind="start")
    for done in range(1, decoded):
        yield ProgressEvent(path, done, estimated, done * 0.5)
    yield ProgressEvent(path, decoded, decoded, decoded * 0.5, kind="done")


def test_live_bar_ends_at_the_frames_really_decoded(final_screen):
    console, _ = terminal()
    path = Path("clip.mp4")
    with ProgressDisplay(1, console=console) as display:
        for event in events(path, estimated=11, decoded=10):  # the container said 11
            display(event)
        task = display._progress.tasks[0]
        assert (task.completed, task.total) == (10, 10)


def test_after_a_run_only_one_clean_line_per_file_is_left_on_the_terminal(final_screen):
    console, out = terminal()
    paths = [Path("a.mp4"), Path("b.mp4")]
    with ProgressDisplay(len(paths), console=console) as display:
        for path in paths:
            for event in events(path, estimated=9, decoded=8):
                display(event)
                display._progress.refresh()  # draw every state, as the timer would
            display.file_finished(path, f"{path.stem}.scream.mp4  (8 frames, 2.0 fps, cpu fp32)")
    screen = final_screen(out.getvalue())
    assert screen == ["a.scream.mp4  (8 frames, 2.0 fps, cpu fp32)",
                      "b.scream.mp4  (8 frames, 2.0 fps, cpu fp32)"]
    assert "all files" in out.getvalue()  # it was shown while running


def test_live_display_shows_a_smoothed_eta(final_screen):
    console, out = terminal()
    path = Path("clip.mp4")
    with ProgressDisplay(1, console=console) as display:
        display(ProgressEvent(path, 0, 100, 0.0, kind="start"))
        display(ProgressEvent(path, 10, 100, 5.0))  # 2 fps: 90 frames in 45 s
        display._progress.refresh()
        assert "ETA 0:00:45" in final_screen(out.getvalue())[-1]


def test_without_a_terminal_plain_lines_and_the_file_line_once():
    out = io.StringIO()
    console = Console(file=out, width=200)  # not a terminal
    path = Path("clip.mp4")
    with ProgressDisplay(1, console=console, log_interval=0.0) as display:
        for event in events(path, estimated=5, decoded=4):
            display(event)
        display.file_finished(path, "clip.scream.mp4  (4 frames)")
    lines = out.getvalue().splitlines()
    assert lines[0] == "clip.mp4: starting (5 frames)"
    assert lines[1].startswith("clip.mp4: 1/5 frames")
    assert lines[-1] == "clip.scream.mp4  (4 frames)"
    assert "\x1b[" not in out.getvalue()
    assert sum("4/4" in line for line in lines) == 0  # "done" is the file line, not a log line
