"""The Python API: everything the CLI does is one call here.

    import vidstyle
    vidstyle.stylize_video("clip.mp4", style="scream")          # -> clip.scream.mp4
    with vidstyle.Stylizer(vidstyle.Settings(style="wave")) as stylizer:
        for path in paths:
            stylizer.video(path, out_dir="styled/")               # network loaded once
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from vidstyle.config import Settings
from vidstyle.device import precision_name, resolve_batch, resolve_device, resolve_precision
from vidstyle.engines.base import Engine
from vidstyle.engines.fast import FastEngine
from vidstyle.engines.scheduled import ScheduledEngine
from vidstyle.errors import Cancelled, OutputError, SettingsError
from vidstyle.files import (
    IMAGE_SUFFIXES,
    atomic_output,
    check_output_path,
    read_image,
    write_image,
)
from vidstyle.media.decode import Demuxer
from vidstyle.media.encode import VideoWriter
from vidstyle.media.probe import MediaInfo, own_output_reason, probe
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
    # Something of the input is not in the output: a dropped stream, skipped packets,
    # video that ended early. The CLI exits non-zero for it.
    data_lost: bool = False

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


def style_slug(style: str) -> str:
    """A filename-safe short name for a style spec (scream, wave0.4-scream0.6, ...)."""
    try:
        from vidstyle.styles import style_slug as catalogue_slug
    except ImportError:  # the catalogue is optional for custom networks
        catalogue_slug = None
    if catalogue_slug is not None:
        return catalogue_slug(style)
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(style).stem)


def default_output_path(src: str | Path, style: str, out_dir: str | Path | None = None) -> Path:
    """clip.mp4 -> clip.<style>.mp4, beside the input or in `out_dir`."""
    src = Path(src)
    folder = Path(out_dir) if out_dir is not None else src.parent
    return folder / f"{src.stem}.{style_slug(style)}{src.suffix or '.mp4'}"


__all__ = ["Stylizer", "VideoResult", "own_output_reason", "stylize_image", "stylize_video"]


class Stylizer:
    """Holds a loaded engine so that many files reuse one network (and one device)."""

    def __init__(self, settings: Settings | None = None, *, network: nn.Module | None = None):
        self.settings = (settings or Settings()).validate()
        self.device = resolve_device(self.settings.device)
        self.dtype = engine_precision(self.settings, self.device)
        self._network = network
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.settings, self.device, self.dtype, self._network)
        return self._engine

    def close(self) -> None:
        """Close the engine (its flow thread, device memory); a later call loads it anew."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Stylizer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def video(
        self,
        src: str | Path,
        dst: str | Path | None = None,
        *,
        out_dir: str | Path | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        warmup: float = 0.0,
        video_only: bool = False,
        inputs: Iterable[str | Path] = (),
    ) -> VideoResult:
        """Stylize one video file; see `stylize_video`.

        `inputs`: the other inputs of the same run; the output may not be, or alias, any
        of them (a batch `a.mp4 a.scream.mp4` must not write over its second input).

        For executors that cut a video into segments: `warmup` seconds before
        `settings.start` run through the engine (priming temporal state) but are not
        written, and `video_only` leaves the other streams out (they are muxed once over
        the joined whole).
        """
        src = Path(src)
        settings = self.settings
        dst = Path(dst) if dst is not None else default_output_path(src, settings.style, out_dir)
        protected = [src, *(Path(p) for p in inputs)]
        info = probe(src)
        check_window(info, settings)
        # Long inputs (or --resume) go as journaled segments that survive a crash
        # (vidstyle.resume, docs/resume.md); a segment of one comes back here. It checks
        # the output itself: an output its own earlier run published is not "in the way".
        from vidstyle.resume import is_resumable, stylize_resumable

        if not video_only and warmup == 0 and is_resumable(settings, info):
            return stylize_resumable(self, src, dst, info, on_progress=on_progress,
                                     cancel=cancel, inputs=protected)
        check_output_path(dst, settings.output.overwrite, inputs=protected)
        engine = self.engine  # load before timing starts and before creating any file
        if isinstance(engine, ScheduledEngine):  # every cue inside the video, before work
            engine.schedule.check_within(info.duration, src)
        engine.reset()
        started = time.monotonic()
        report = _ProgressReporter(src, info, settings, on_progress, started)
        cancel = cancel or threading.Event()  # Ctrl-C sets it too (Pipeline.run)
        # Gatys: minutes per frame, so progress and cancellation reach inside one.
        engine.on_iteration = report.iteration_reporter(cancel)
        try:
            with atomic_output(dst, settings.output.overwrite, inputs=protected) as tmp:
                frames, writer, demuxer = self._run(info, tmp, engine, report, cancel,
                                                    warmup, video_only)
        finally:
            engine.on_iteration = None
        seconds = time.monotonic() - started
        report.emit(frames, kind="done", force=True)
        warnings = video_warnings(demuxer) + writer.report.warnings
        return VideoResult(
            src=src,
            dst=dst,
            frames=frames,
            seconds=seconds,
            device=str(self.device),
            precision=precision_name(self.dtype),
            copied_streams=writer.report.copied,
            transcoded_streams=writer.report.transcoded,
            warnings=warnings,
            streams=[fate.to_dict() for fate in writer.report.streams],
            ended_early=demuxer.ended_early,
            data_lost=writer.report.data_lost or bool(video_warnings(demuxer)),
        )

    def windowed(self, start: float, duration: float | None, *,
                 overwrite: bool = False) -> Stylizer:
        """This job over ``[start, start + duration)`` only, sharing the loaded engine
        (segments of a long video, one after another)."""
        window = copy.copy(self)
        window._engine = self.engine
        window.settings = self.settings.replace(
            start=start, duration=duration, output={"overwrite": overwrite}
        ).validate()
        return window

    def image(self, src: str | Path, dst: str | Path | None = None) -> Path:
        """Stylize one still image (any format OpenCV reads); returns the output path."""
        src = Path(src)
        dst = Path(dst) if dst is not None else default_output_path(src, self.settings.style)
        if dst.suffix.lower() not in IMAGE_SUFFIXES:
            raise OutputError(dst, f"unknown image type {dst.suffix!r} (use .png or .jpg)")
        pixels = read_image(src)
        engine = self.engine
        engine.reset()
        styled = engine.stylize(torch.from_numpy(pixels)[None])[0].numpy()
        with atomic_output(dst, self.settings.output.overwrite, inputs=[src]) as tmp:
            write_image(tmp, styled, suffix=dst.suffix)
        return dst

    def _run(self, info: MediaInfo, tmp: Path, engine: Engine, report, cancel,
             warmup: float, video_only: bool):
        settings = self.settings
        segment = settings.start is not None or settings.duration is not None
        window = {"start": settings.start, "duration": settings.duration, "warmup": warmup,
                  "other_streams": True}
        with Demuxer(info, **window) as demuxer:
            writer = VideoWriter(
                tmp, info, demuxer.container, settings.output, rebase=segment,
                video_only=video_only,
            )
            report.emit(0, kind="start")  # after the encoder options are proven
            source = engine.timed(demuxer) if isinstance(engine, ScheduledEngine) else demuxer
            pipeline = Pipeline(
                source, engine, writer,
                batch=resolve_batch(settings.batch, self.device), on_frames=report.emit,
                cancel=cancel,
            )
            try:
                frames = pipeline.run()
            except BaseException:
                writer.abort()
                raise
        return frames, writer, demuxer


def check_window(info: MediaInfo, settings: Settings) -> None:
    """Refuse, before any work, a --start at or past the end of the video."""
    start = settings.start
    if start is None or info.duration is None:
        return
    end = info.start_time + info.duration
    if start >= end:
        raise SettingsError(f"{info.path}: --start {start:g} s is at or past the end of the "
                            f"video ({end:.2f} s)")


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


def engine_precision(settings: Settings, device: torch.device) -> torch.dtype:
    """The compute dtype of the job's engine. The gatys engine keeps VGG-19 in fp32 on a
    CPU (bf16 there slowed L-BFGS, engines/gatys.py), so "auto" means fp32 for it and an
    explicit bf16 is refused rather than silently ignored."""
    dtype = resolve_precision(settings.precision, device)
    if settings.engine != "gatys" or device.type != "cpu" or dtype == torch.float32:
        return dtype
    if settings.precision != "auto":
        raise SettingsError(
            f"precision {settings.precision} does nothing for --engine gatys on the CPU "
            "(it optimises in fp32 there); use auto or fp32"
        )
    return torch.float32


def build_engine(
    settings: Settings, device: torch.device, dtype: torch.dtype, network: nn.Module | None = None
) -> Engine:
    """The engine `settings.engine` names, with its network and temporal filter."""
    from vidstyle.styles.schedule import is_schedule

    if is_schedule(settings.style):  # styles along the timeline (docs/schedule.md)
        from vidstyle.engines.scheduled import build_scheduled_engine

        return build_scheduled_engine(settings, device, dtype, make_temporal_filter(settings))
    if settings.engine == "fast":
        network = network or load_network(settings, device)
        return FastEngine(
            network, device, dtype,
            max_size=settings.max_size,
            temporal_filter=make_temporal_filter(settings),
            compile=settings.compile,
            style_scale=settings.style_scale,
        )
    from vidstyle.engines.gatys import GatysEngine

    init_network = None
    if settings.engine == "fast+gatys":
        init_network = network or load_network(settings, device)
    return GatysEngine.from_settings(settings, device, dtype, init_network=init_network)


def load_network(settings: Settings, device: torch.device) -> nn.Module:
    from vidstyle.styles import load_style

    return load_style(
        settings.style,
        strength=settings.strength,
        preserve_color=settings.preserve_color,
        device=device,
    )


def make_temporal_filter(settings: Settings):
    if settings.temporal_mode == "off":
        return None
    from vidstyle.temporal.blend import make_temporal_filter as make

    return make(settings.temporal_mode, settings.temporal_strength,
                settings.temporal_structure)


def stylize_video(
    src: str | Path,
    dst: str | Path | None = None,
    settings: Settings | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    network: nn.Module | None = None,
    **overrides,
) -> VideoResult:
    """Stylize `src` into `dst` (default: ``<src stem>.<style><ext>`` beside it).

    Every frame keeps its timestamp; audio, subtitles, chapters and metadata are carried
    over. The output appears atomically (temp file + rename); on any error or when
    `cancel` is set, nothing is left behind. `overrides` change `settings` fields
    (``style="wave"``, ``batch=8``, ``output={"crf": 20}``...).

    Raises `InputError`, `OutputError`, `StyleError`, `SettingsError` or `Cancelled`.
    """
    settings = (settings or Settings()).replace(**overrides) if overrides else settings
    with Stylizer(settings, network=network) as stylizer:
        return stylizer.video(src, dst, on_progress=on_progress, cancel=cancel)


def stylize_image(
    src: str | Path,
    dst: str | Path | None = None,
    settings: Settings | None = None,
    *,
    network: nn.Module | None = None,
    **overrides,
) -> Path:
    """Stylize one image with the engine `settings` names (fast, gatys, fast+gatys)."""
    settings = (settings or Settings()).replace(**overrides) if overrides else settings
    with Stylizer(settings, network=network) as stylizer:
        return stylizer.image(src, dst)
