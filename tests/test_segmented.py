"""Segments (vidstyle/segmented.py): a segment's pass, the in-order run the resumable job
uses, and the join, on real clips through the default temporal filter."""

from __future__ import annotations

import av
import pytest
import torch
from helpers import InvertNetwork, video_timestamps
from test_resume import small_copy

from vidstyle.api import Stylizer
from vidstyle.config import Settings
from vidstyle.media.probe import probe
from vidstyle.media.segments import Segment
from vidstyle.segmented import (
    SegmentsProgress,
    join,
    plan,
    segment_settings,
    stylize_in_order,
    stylize_segment,
)


def settings(**changes) -> Settings:
    """The user's defaults (the flow filter included), with a quick encoder."""
    return Settings(style="invert", device="cpu", batch=1, **changes).replace(
        output={"preset": "ultrafast"})


class Recording(torch.nn.Module):
    """1 - x, counting the frames it computes."""

    size_multiple = 1

    def __init__(self) -> None:
        super().__init__()
        self.frames = 0

    def forward(self, x):
        self.frames += x.shape[0]
        return 1.0 - x


def test_a_segment_runs_its_warm_up_through_the_engine_but_writes_only_its_video(
        tmp_path, samples):
    src = samples / "bigbuckbunny.mp4"  # 25 fps, audio
    network = Recording()
    segment = Segment(index=1, start=2.0, end=2.4, start_pts=0, frames=10)
    with Stylizer(settings(), network=network) as stylizer:
        result = stylize_segment(stylizer, settings(), src, probe(src), segment,
                                 tmp_path / "seg.mp4", warmup=0.2)
    assert result.frames == 10
    assert network.frames == 15  # 5 warm-up frames (0.2 s at 25 fps) + 10 written
    with av.open(str(result.dst)) as container:
        assert [s.type for s in container.streams] == ["video"]
    assert video_timestamps(result.dst)[0] == pytest.approx(0.0, abs=1e-3)


def test_segment_settings_are_the_jobs_over_the_segments_window():
    job = settings(strength=0.5)
    window = segment_settings(job, Segment(index=2, start=3.5, end=5.0, start_pts=0,
                                           frames=40))
    assert (window.start, window.duration, window.output.overwrite) == (3.5, 1.5, True)
    assert window.strength == 0.5 and window.output.preset == "ultrafast"
    last = segment_settings(job, Segment(index=3, start=5.0, end=None, start_pts=0, frames=9))
    assert last.duration is None


def test_in_order_runs_the_unfinished_segments_and_the_join_publishes_last(
        tmp_path, samples):
    # cup.mp4 at 160x120 with a keyframe every 6 frames, its audio copied.
    src = small_copy(samples / "cup.mp4", tmp_path / "cup.mp4")
    job = settings(duration=1.2)
    info = probe(src)
    segments = plan(src, job, seconds=0.4)
    assert len(segments) == 3
    paths = [tmp_path / f"seg{s.index}.mp4" for s in segments]  # beside the clip
    finished, events = [], []
    done: dict[int, int] = {}
    with Stylizer(job, network=InvertNetwork()) as stylizer:
        progress = SegmentsProgress(src, segments, done, events.append, started=0.0)
        run = stylize_in_order  # the first segment only: as if the job stopped there
        run(stylizer, job, src, info, segments[:1], paths[:1], done, warmup=0.1,
            on_finished=lambda s, n: finished.append((s.index, n)), progress=progress)
        progress = SegmentsProgress(src, segments, done, events.append, started=0.0)
        run(stylizer, job, src, info, segments, paths, done, warmup=0.1,
            on_finished=lambda s, n: finished.append((s.index, n)), progress=progress)
    assert [index for index, _ in finished] == [0, 1, 2]  # none done twice
    assert done == dict(finished) and sum(done.values()) == sum(s.frames for s in segments)
    starts = [e for e in events if e.kind == "start"]
    assert [e.frames_done for e in starts] == [0, done[0]]  # the second run counts the first
    assert all(e.frames_total == sum(done.values()) for e in events)

    dst = tmp_path / "joined.mp4"
    seen = []

    def before_publish(tmp):
        seen.append((tmp.is_file(), dst.exists()))

    frames, report = join(paths, segments, info, dst, job, inputs=[src],
                          before_publish=before_publish)
    assert seen == [(True, False)]  # the finished file, before it takes the output's name
    assert frames == sum(done.values()) == len(video_timestamps(dst))
    assert {fate.kind: fate.fate for fate in report.streams}["audio"] == "copied"
