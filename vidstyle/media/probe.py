"""Open a file, make sure it is a video we can stylize, and describe it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from vidstyle.errors import InputError
from vidstyle.files import not_a_regular_file_reason
from vidstyle.media.color import HdrFormat, hdr_format

# Demuxers that read single pictures (or picture sequences), not videos.
_IMAGE_FORMATS = ("image2", "_pipe", "gif", "apng", "webp")
# What vidstyle writes into every output's container metadata, so that `apply DIR` and
# `watch` know its own outputs from the user's inputs. "encoded_by" is the one key that
# survives every muxer we write (AVI keeps only its RIFF INFO keys: ITCH is encoded_by).
MARK_KEY = "encoded_by"
MARK_VALUE = "vidstyle"
# Packets tried for a first decodable frame: a damaged opening GOP must not make a file
# whose later frames decode look undecodable, nor a garbage file take long to refuse.
FIRST_FRAME_PACKETS = 600


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
    sample_aspect_ratio: Fraction | None = None  # None: square pixels / not stated
    start_time: float = 0.0  # the video stream's first timestamp (s)
    marked: bool = False  # written by vidstyle (MARK_KEY in the container metadata)
    codec: str = ""  # the video's codec, FFmpeg's canonical name ("hevc", "h264")
    hdr: HdrFormat | None = None  # HLG or PQ video: its format and side data
    timecode: str | None = None  # the start timecode a camera wrote ("01:02:03:04")

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
    """Open `path` with PyAV, turning every way it can fail into a one-line InputError.

    Only regular files are opened: a FIFO blocks the open forever, /dev/zero never ends.
    """
    reason = not_a_regular_file_reason(path)
    if reason:
        raise InputError(path, reason)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(path, f"cannot read it ({exc.strerror or exc})") from None
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.error.InvalidDataError:
        raise InputError(path, "not a video file, or the file is corrupt") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(path, f"cannot open ({error_reason(exc)})") from None


def error_reason(exc: BaseException) -> str:
    """What an FFmpeg or OS error says, without its errno prefix."""
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
    if ctx is None:
        raise InputError(path, "video stream has no codec this build decodes (corrupt header?)")
    if not ctx.width or not ctx.height:
        raise InputError(path, "video stream has no picture size (corrupt header?)")
    duration = _duration_seconds(container, stream)
    sar = ctx.sample_aspect_ratio
    first = _first_frame(path, container, stream)
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
        rotation=int(round(first.rotation or 0)),
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
        sample_aspect_ratio=Fraction(sar) if sar and sar != 1 else None,
        start_time=float(stream.start_time * stream.time_base)
        if stream.start_time is not None and stream.time_base else 0.0,
        marked=is_marked(container.metadata),
        codec=ctx.codec.canonical_name if ctx.codec else "",
        hdr=hdr_format(int(ctx.color_trc or 2), int(ctx.color_primaries or 2),
                       int(ctx.colorspace or 2), first.side_data, _codec_tag(ctx)),
        timecode=timecode(container),
    )


def timecode(container: av.container.InputContainer) -> str | None:
    """The start timecode: the video stream's tag (MOV's tmcd track, Matroska's
    TIMECODE), a timecode track's own, or the file's."""
    streams = [container.streams.video[0], *container.streams, container]
    for holder in streams:
        for key, value in holder.metadata.items():
            if key.lower() == "timecode" and value:
                return value
    return None


def _codec_tag(ctx) -> str:
    try:
        return str(ctx.codec_tag or "")
    except (ValueError, UnicodeDecodeError):
        return ""


def is_marked(metadata: dict[str, str]) -> bool:
    """True when container metadata carries vidstyle's mark (Matroska upper-cases keys)."""
    return any(
        key.lower() == MARK_KEY and value.startswith(MARK_VALUE)
        for key, value in metadata.items()
    )


def own_output_reason(path: Path) -> str | None:
    """Why a file found in an input folder is left out: it is one of vidstyle's outputs
    (stylizing those again is how `clip.scream.scream.scream...` came about)."""
    if written_by_vidstyle(path):
        return "an output of vidstyle (use --include-outputs to stylize it again)"
    return None


def written_by_vidstyle(path: Path) -> bool:
    """True for a file vidstyle wrote (its mark is in the container metadata). Files that
    cannot be opened are not ours: they are left to be refused with their own reason."""
    if not_a_regular_file_reason(path):
        return False
    try:
        with av.open(str(path), metadata_errors="replace") as container:
            return is_marked(container.metadata)
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def _duration_seconds(container: av.container.InputContainer, stream) -> float | None:
    """The video stream's own duration where the file states it: the per-stream DURATION
    tag Matroska muxers write (FFmpeg fills Matroska's stream duration with the whole
    file's, audio included), else the stream's (MP4, MOV, AVI), else the container's."""
    tag = next((v for k, v in stream.metadata.items() if k.upper() == "DURATION"), None)
    if tag:
        with contextlib.suppress(ValueError):
            hours, minutes, seconds = tag.split(":")
            # The tag is where the stream ends on the file's clock, not its length.
            end = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            start = float(stream.start_time * stream.time_base) \
                if stream.start_time is not None and stream.time_base else 0.0
            return max(end - start, 0.0)
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _first_frame(path: Path, container, stream) -> av.VideoFrame:
    """Decode the first frame: proves the stream decodes, and carries what PyAV exposes
    on frames only: the display rotation (phones' portrait clips) and HDR side data
    (mastering display, light level, Dolby Vision). A damaged packet is skipped: the file
    is judged by what decodes.
    """
    last_error = None
    try:
        for n, packet in enumerate(container.demux(stream)):
            if n >= FIRST_FRAME_PACKETS:
                break
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError) as exc:
                last_error = exc
                continue
            for frame in frames:
                return frame
        for frame in stream.codec_context.decode(None):  # a decoder holding frames back
            return frame
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        last_error = exc
    why = f" ({error_reason(last_error)})" if last_error else ""
    raise InputError(path, f"video stream holds no decodable frame (truncated or corrupt){why}")
