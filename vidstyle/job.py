"""The single-pass job: one video decoded, stylized and encoded; `VideoResult`, what a job made.

The single-pass job is the bottom of every way of running: `Stylizer.video` runs it over a
whole file, `vidstyle.segmented` over one segment's window (its video alone, after a warm-up
that is run through the engine but not written), for the resumable job and for Ray alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from vidstyle.config import Settings
from vidstyle.device import precision_name, resolve_batch
from vidstyle.engines.base import Engine
from vidstyle.errors import Cancelled, SettingsError
from vidstyle.files import atomic_output, check_output_path
from vidstyle.media.decode import Demuxer
from vidstyle.media.encode import VideoWriter
from vidstyle.media.probe import MediaInfo
from vidstyle.media.report import MuxReport
from vidstyle.pipeline import Pipeline
from vidstyle.progress import ProgressCallback, ProgressEvent, Throttle


@dataclass
class VideoResult:
    """What one finished job produced."""

    src: Path
    dst: Path
    frames: int
    seconds: float
    device: str
    precision: str
    copied_streams: list[int] = field(default_factory=list)
    transcoded_streams: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Each input stream's fate: index, kind, codec, fate (stylized, copied, transcoded,
    # dropped), why, language.
    streams: list[dict] = field(default_factory=list)
    # (where the video stopped, where the file said it ends), seconds; None if whole.
    ended_early: tuple[float, float] | None = None
    # vidstyle left out something of the input that a player could play (a dropped
    # stream, a skipped packet). The CLI exits 3 for it. The input's own damage (video
    # packets that do not decode, a file cut short) is a warning, not a loss.
    data_lost: bool = False

    @classmethod
    def from_mux(cls, report: MuxReport, *, src: Path, dst: Path, frames: int,
                 seconds: float, device: str = "", precision: str = "",
                 input_warnings: Sequence[str] = (), notes: Sequence[str] = (),
                 ended_early: tuple[float, float] | None = None) -> VideoResult:
        """The result of a job that wrote `dst`: what became of each stream, and whether
        anything was lost, as the writer reports it. `input_warnings` (the decoder's
        findings about the input) come before the writer's warnings, `notes` after."""
        return cls(
            src=src, dst=dst, frames=frames, seconds=seconds, device=device,
            precision=precision, copied_streams=report.copied,
            transcoded_streams=report.transcoded,
            warnings=[*input_warnings, *report.warnings, *notes],
            streams=[fate.to_dict() for fate in report.streams], ended_early=ended_early,
            data_lost=report.data_lost,
        )

    @classmethod
    def written_earlier(cls, src: Path, dst: Path, frames: int, why: str, *,
                        seconds: float = 0.0, device: str = "",
                        precision: str = "") -> VideoResult:
        """The result of a job whose output an earlier attempt published before it died:
        nothing more is known of it than its frames, and `why` says so."""
        return cls(src=src, dst=dst, frames=frames, seconds=seconds, device=device,
                   precision=precision, warnings=[why])

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "src": str(self.src),
            "dst": str(self.dst),
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            "device": self.device,
            "precision": self.precision,
            "copied_streams": self.copied_streams,
            "transcoded_streams": self.transcoded_streams,
            "streams": self.streams,
            "ended_early": None if self.ended_early is None else {
                "at": round(self.ended_early[0], 3), "of": round(self.ended_early[1], 3)},
            "data_lost": self.data_lost,
            "warnings": self.warnings,
        }


class EngineHolder(Protocol):
    """What a pass needs of whoever runs it: the engine (loaded on first use) and the
    device and precision it runs at. `vidstyle.api.Stylizer` is one."""

    device: torch.device
    dtype: torch.dtype

    @property
    def engine(self) -> Engine: ...


def check_window(info: MediaInfo, settings: Settings) -> None:
    """Refuse, before any work, a --start at or past the end of the video."""
    start = settings.start
    if start is None or info.duration is None:
        return
    end = info.start_time + info.duration
    if start >= end:
        raise SettingsError(f"{info.path}: --start {start:g} s is at or past the end of the "
                            f"video ({end:.2f} s)")


def stylize_pass(
    holder: EngineHolder,
    settings: Settings,
    src: Path,
    dst: Path,
    info: MediaInfo,
    *,
    inputs: Iterable[Path] = (),
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    warmup: float = 0.0,
    video_only: bool = False,
) -> VideoResult:
    """Stylize `src` (the window `settings.start`/`settings.duration` of it) into `dst`
    in one pass through `holder`'s engine.

    `inputs`: every input of the run (default: `src`); the output may not be or alias any
    of them. For one segment of a cut video (`vidstyle.segmented`): `warmup` seconds
    before the window run through the engine (priming its temporal state) but are not
    written, and `video_only` leaves the other streams out (muxed once over the joined
    whole).
    """
    protected = list(inputs) or [src]
    check_output_path(dst, settings.output.overwrite, inputs=protected)
    engine = holder.engine  # load before timing starts and before creating any file
    engine.check_video(src, info.duration)
    engine.reset()
    started = time.monotonic()
    report = _ProgressReporter(src, info, settings, on_progress, started)
    cancel = cancel or threading.Event()  # Ctrl-C sets it too (Pipeline.run)
    # Gatys: minutes per frame, so progress and cancellation reach inside one.
    engine.on_iteration = report.iteration_reporter(cancel)
    window = {"start": settings.start, "duration": settings.duration, "warmup": warmup,
              "other_streams": True}
    try:
        with atomic_output(dst, settings.output.overwrite, inputs=protected) as tmp, \
                Demuxer(info, **window) as demuxer:
            writer = VideoWriter(tmp, info, demuxer.container, settings.output,
                                 rebase=settings.start is not None
                                 or settings.duration is not None,
                                 video_only=video_only)
            report.emit(0, kind="start")  # after the encoder options are proven
            pipeline = Pipeline(
                engine.frames_from(demuxer), engine, writer,
                batch=resolve_batch(settings.batch, holder.device), on_frames=report.emit,
                cancel=cancel,
            )
            try:
                frames = pipeline.run()
            except BaseException:
                writer.abort()
                raise
    finally:
        engine.on_iteration = None
    seconds = time.monotonic() - started
    report.emit(frames, kind="done", force=True)
    return VideoResult.from_mux(
        writer.report, src=src, dst=dst, frames=frames, seconds=seconds,
        device=str(holder.device), precision=precision_name(holder.dtype),
        input_warnings=video_warnings(demuxer), ended_early=demuxer.ended_early,
    )


def video_warnings(demuxer: Demuxer) -> list[str]:
    """What the decoder could not give: damaged packets, a file that stops early."""
    warnings = []
    if demuxer.ended_early is not None:
        at, of = demuxer.ended_early
        warnings.append(f"video ended at {at:.2f} s of {of:.2f} s (the file is cut short or "
                        "damaged; every frame that decodes was stylized)")
    if demuxer.damaged_packets:
        warnings.append(f"{demuxer.damaged_packets} damaged video packet(s) did not decode "
                        "and were skipped")
    return warnings


class _ProgressReporter:
    """Turns frame counts from the pipeline into throttled `ProgressEvent`s."""

    def __init__(self, src, info: MediaInfo, settings: Settings, callback, started) -> None:
        self.src = src
        self.total = info.estimated_frames(settings.start, settings.duration)
        self.callback = callback
        self.started = started
        self.throttle = Throttle()
        self.done = 0

    def emit(self, done: int, kind: str = "frames", force: bool = False) -> None:
        self.done = done
        if self.callback is None or not (force or kind != "frames" or self.throttle.ready()):
            return
        total = max(self.total, done) if kind != "done" else done
        self.callback(
            ProgressEvent(
                path=self.src,
                frames_done=done,
                frames_total=total,
                elapsed=time.monotonic() - self.started,
                kind=kind,
            )
        )

    def iteration_reporter(self, cancel: threading.Event | None):
        """The optimizer's per-iteration callback: a progress event (throttled), and the
        way a cancel reaches into a frame that would otherwise run for minutes."""

        def on_iteration(iteration: int, iterations: int, loss: float) -> None:
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            if self.callback is None or not self.throttle.ready():
                return
            self.callback(ProgressEvent(
                path=self.src, frames_done=self.done, frames_total=max(self.total, self.done),
                elapsed=time.monotonic() - self.started, kind="iteration",
                iteration=iteration, iterations_total=iterations, loss=loss,
            ))

        return on_iteration
