"""Open a file, make sure it is a video we can stylize, and describe it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from vidstyle.errors import InputError

# Demuxers that read single pictures (or picture sequences), not videos.
_IMAGE_FORMATS = ("image2", "_pipe", "gif", "apng", "webp")


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # "audio", "subtitle", "data", ...
    codec: str
    language: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    """What the pipeline needs to know about an input before decoding it."""

    path: Path
    format_name: str
    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    frame_rate: Fraction | None
    frames: int | None  # from the container index; None if unknown
    duration: float | None  # seconds
    rotation: int  # display rotation in degrees (phone clips), 0 if none
    color_range: int
    colorspace: int
    color_primaries: int
    color_trc: int
    others: tuple[StreamInfo, ...] = field(default_factory=tuple)

    @property
    def audio_streams(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.others if s.kind == "audio")

    def estimated_frames(self, start: float | None = None, duration: float | None = None) -> int:
        """Frames the job will produce: the index count, or duration x rate as a guess."""
        total = self.duration or 0.0
        span = max(total - (start or 0.0), 0.0)
        if duration is not None:
            span = min(span, duration)
        if self.frames and start is None and duration is None:
            return self.frames
        if self.frame_rate:
            return max(int(round(span * float(self.frame_rate))), 1)
        return self.frames or 0


def open_input(path: Path) -> av.container.InputContainer:
    """Open `path` with PyAV, turning every way it can fail into a one-line InputError."""
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not a video file")
    if not os.access(path, os.R_OK):
        raise InputError(path, "permission denied")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.error.InvalidDataError:
        raise InputError(path, "not a video file, or the file is corrupt") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(path, f"cannot open ({_describe(exc)})") from None


def _describe(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def probe(path: str | Path) -> MediaInfo:
    """Describe a video file; raise InputError if it is not a stylizable video."""
    path = Path(path)
    with open_input(path) as container:
        return describe(path, container)


def describe(path: Path, container: av.container.InputContainer) -> MediaInfo:
    format_name = container.format.name
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise InputError(path, f"has no video stream (found: {', '.join(kinds)})")
    if any(marker in format_name for marker in _IMAGE_FORMATS):
        raise InputError(path, "is a still image, not a video (use `vidstyle image`)")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if not ctx.width or not ctx.height:
        raise InputError(path, "video stream has no picture size (corrupt header?)")
    duration = _duration_seconds(container, stream)
    return MediaInfo(
        path=path,
        format_name=format_name,
        width=ctx.width,
        height=ctx.height,
        pix_fmt=ctx.pix_fmt or "yuv420p",
        time_base=stream.time_base or Fraction(1, 90000),
        frame_rate=stream.average_rate or stream.guessed_rate,
        frames=stream.frames or None,
        duration=duration,
        rotation=_first_frame_rotation(path, container, stream),
        color_range=int(ctx.color_range or 0),
        colorspace=int(ctx.colorspace or 2),
        color_primaries=int(ctx.color_primaries or 2),
        color_trc=int(ctx.color_trc or 2),
        others=tuple(
            StreamInfo(
                index=s.index,
                kind=s.type,
                codec=s.codec_context.name if s.codec_context else "unknown",
                language=s.metadata.get("language"),
            )
            for s in container.streams
            if s.index != stream.index
        ),
    )


def _duration_seconds(container: av.container.InputContainer, stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _first_frame_rotation(path: Path, container, stream) -> int:
    """Decode the first frame: proves the stream decodes, and carries the display rotation.

    PyAV exposes the display matrix (what phones write for portrait clips) on frames only.
    """
    try:
        for frame in container.decode(stream):
            return int(round(frame.rotation or 0))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(path, f"video does not decode ({_describe(exc)})") from None
    raise InputError(path, "video stream holds no decodable frame (truncated or corrupt)")
