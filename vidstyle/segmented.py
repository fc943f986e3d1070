"""A video cut at keyframes: the segments planned, stylized alone (in order or in parallel), joined.

The two ways of running that cut a video share this module: the resumable job
(`vidstyle.resume`) runs the segments one after another through one loaded engine and
journals each, and the Ray executor (`vidstyle.executors.ray`) runs them as parallel tasks.
Either way a segment is the single-pass job (`vidstyle.job.stylize_pass`) over the
segment's window, its video alone, after `warmup_seconds` run through the engine but not
written, so its temporal state starts warm; and the join remuxes the segments without
re-encoding and muxes the original's other streams once over the whole
(`vidstyle.media.segments.join_segments`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from vidstyle.config import Settings
from vidstyle.files import atomic_output
from vidstyle.job import EngineHolder, VideoResult, stylize_pass
from vidstyle.media.probe import MediaInfo
from vidstyle.media.report import MuxReport
from vidstyle.media.segments import Segment, join_segments, plan_segments, scan_video
from vidstyle.progress import ProgressCallback, ProgressEvent


def plan(src: Path, settings: Settings, *, count: int | None = None,
         seconds: float | None = None) -> list[Segment]:
    """The job's window cut at keyframes into about `count` segments, or segments of
    about `seconds`."""
    return plan_segments(scan_video(src), count=count, seconds=seconds,
                         start=settings.start, duration=settings.duration)


def segment_settings(settings: Settings, segment: Segment) -> Settings:
    """The job's settings over `segment`'s window, free to replace a half-written file of
    its own."""
    return settings.replace(start=segment.start, duration=segment.duration,
                            output={"overwrite": True}).validate()


def stylize_segment(holder: EngineHolder, settings: Settings, src: Path, info: MediaInfo,
                    segment: Segment, path: Path, *, warmup: float,
                    on_progress: ProgressCallback | None = None,
                    cancel: threading.Event | None = None) -> VideoResult:
    """`segment`'s video alone, timestamps from zero, into `path`; `warmup` seconds
    before it run through the engine first and are not written."""
    return stylize_pass(holder, segment_settings(settings, segment), src, path, info,
                        warmup=warmup, video_only=True, on_progress=on_progress,
                        cancel=cancel)


def stylize_in_order(holder: EngineHolder, settings: Settings, src: Path, info: MediaInfo,
                     segments: Sequence[Segment], paths: Sequence[Path],
                     done: dict[int, int], *, warmup: float,
                     on_finished: Callable[[Segment, int], None],
                     progress: SegmentsProgress,
                     cancel: threading.Event | None = None) -> None:
    """Stylize, one after another through one engine, every segment not in `done`
    (index -> frames written); `on_finished(segment, frames)` follows each, and `done`
    is updated."""
    for segment, path in zip(segments, paths, strict=True):
        if segment.index in done:
            continue
        result = stylize_segment(holder, settings, src, info, segment, path, warmup=warmup,
                                 on_progress=progress.for_segment(), cancel=cancel)
        on_finished(segment, result.frames)
        done[segment.index] = result.frames


def join(paths: Sequence[Path], segments: Sequence[Segment], info: MediaInfo, dst: Path,
         settings: Settings, *, inputs: Sequence[Path] = (),
         before_publish: Callable[[Path], None] | None = None) -> tuple[int, MuxReport]:
    """Write `dst` atomically from the segment files and the original's other streams;
    `before_publish(tmp)` runs on the finished file just before it takes `dst`'s name.
    Returns the frames written and the writer's report."""
    end = None if settings.duration is None else (settings.start or 0.0) + settings.duration
    with atomic_output(dst, settings.output.overwrite, inputs=inputs) as tmp:
        frames, report = join_segments(paths, segments, info, tmp, settings.output,
                                       start=settings.start, end=end)
        if before_publish is not None:
            before_publish(tmp)
    return frames, report


class SegmentsProgress:
    """Per-segment progress events turned into one file's: frames of finished segments
    included, one start and one done (`finish`); `started`: the job's monotonic start."""

    def __init__(self, src: Path, segments: Sequence[Segment], done: dict[int, int],
                 callback: ProgressCallback | None, started: float) -> None:
        self.src = src
        self.total = sum(s.frames for s in segments)
        self.before = sum(done.values())
        self.callback = callback
        self.started = started
        self._emit(self.before, "start")

    def _emit(self, frames: int, kind: str) -> None:
        if self.callback is not None:
            self.callback(ProgressEvent(self.src, frames, self.total,
                                        time.monotonic() - self.started, kind=kind))

    def for_segment(self) -> ProgressCallback | None:
        """The callback for the next segment's pass."""
        if self.callback is None:
            return None
        before = self.before

        def forward(event: ProgressEvent) -> None:
            if event.kind == "done":
                self.before = before + event.frames_done
            elif event.kind != "start":
                self.callback(dataclasses.replace(
                    event, path=self.src, frames_done=before + event.frames_done,
                    frames_total=self.total, elapsed=time.monotonic() - self.started,
                ))

        return forward

    def finish(self, frames: int) -> None:
        self._emit(frames, "done")
