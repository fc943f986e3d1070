"""Encode stylized frames and mux them beside the input's other streams.

Audio and subtitle packets are copied untouched when the output container accepts their
codec; audio the container refuses is transcoded (AAC, or the container's own default).
Every timestamp is the input's, so variable frame rate stays variable and the streams
stay in sync.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidstyle.config import OutputSettings
from vidstyle.errors import OutputError, SettingsError
from vidstyle.media.decode import DecodedFrame
from vidstyle.media.probe import MediaInfo

log = logging.getLogger(__name__)

# Pixel formats we prefer, per encoder; the first one the encoder supports wins.
# yuvj420p (JPEG full range) is written as yuv420p with the range flag set: the "j"
# formats are deprecated and the flag keeps full-range input correct.
_PREFERRED_PIX_FMTS = {
    "prores_ks": ("yuv422p10le",),
    "libsvtav1": ("yuv420p10le", "yuv420p"),
}
_FULL_RANGE = 2


@dataclass
class CopiedStream:
    """How one non-video input stream reaches the output."""

    input: av.stream.Stream
    output: av.stream.Stream
    transcode: bool
    resampler: av.AudioResampler | None = None
    warned: bool = False


@dataclass
class MuxReport:
    """What happened to the input's other streams (for the job summary and tests)."""

    copied: list[int] = field(default_factory=list)
    transcoded: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    skipped_packets: int = 0
    warnings: list[str] = field(default_factory=list)


def encoder_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    """Quality/speed options in each encoder's own vocabulary."""
    if codec in ("libx264", "libx265"):
        return {"crf": str(crf), "preset": preset}
    if codec == "libvpx-vp9":
        # Constant-quality mode needs the bitrate cap lifted; row-mt uses all cores.
        return {"crf": str(crf), "b": "0", "row-mt": "1"}
    if codec == "libsvtav1":
        return {"crf": str(crf), "preset": "8"}
    if codec.endswith("_nvenc"):
        return {"rc": "vbr", "cq": str(crf), "preset": "p5"}
    if codec == "prores_ks":
        return {"profile": "3"}  # ProRes 422 HQ
    return {}


def output_pix_fmt(
    codec: av.Codec, wanted: str | None, input_pix_fmt: str, size: tuple[int, int]
) -> str:
    """The encoder's pixel format: asked for, else preferred, else the input's.

    Odd sizes cannot be chroma-subsampled (x264 refuses 641x337 in 4:2:0), so those
    fall back to 4:4:4 rather than changing the picture size.
    """
    supported = [f.name for f in (codec.video_formats or ())]
    odd = any(side % 2 for side in size)
    candidates = [wanted] if wanted else []
    candidates += list(_PREFERRED_PIX_FMTS.get(codec.name, ()))
    candidates += [input_pix_fmt.replace("yuvj", "yuv"), "yuv420p", "yuv444p"]
    for name in candidates:
        if not name or (supported and name not in supported):
            continue
        if odd and _subsampled(name):
            continue
        return name
    return supported[0]


def _subsampled(pix_fmt: str) -> bool:
    probe_format = av.VideoFormat(pix_fmt, 16, 16)
    return any(c.width != 16 or c.height != 16 for c in probe_format.components)


class VideoWriter:
    """Writes one output file: the stylized video stream plus copied/transcoded streams.

    Streams are set up at construction; nothing is written to disk until the first video
    frame arrives, so the file header always describes a playable video.
    """

    def __init__(
        self,
        path: Path,
        info: MediaInfo,
        source: av.container.InputContainer,
        settings: OutputSettings,
        *,
        format_name: str | None = None,
        rebase: bool = False,
        video_only: bool = False,
        video_template: av.video.stream.VideoStream | None = None,
    ) -> None:
        """`source`: the input, whose streams are carried over in its order (its first
        video stream is the one replaced by the stylized frames). Packets of streams that
        are not carried are ignored by `write_packet`.

        `video_template`: copy already-encoded video (`write_video_packet`) in that
        stream's codec instead of encoding frames; how segment outputs are joined."""
        self.path = path
        self.info = info
        self.rebase = rebase
        self.offset_seconds: float | None = None if rebase else 0.0
        self.report = MuxReport()
        try:
            self.container = av.open(str(path), mode="w", format=format_name)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise OutputError(path, f"cannot create output ({_reason(exc)})") from None
        self._durations: dict[int, int] = {}
        self.copies: dict[int, CopiedStream] = {}
        # Add the output streams in the input's order, so stream #N stays stream #N.
        video_index = source.streams.video[0].index
        for stream in source.streams:
            if stream.index == video_index:
                self.video = (self._add_encoded_video_stream(settings) if video_template is None
                              else self._add_copied_video_stream(video_template))
            elif video_only:
                continue
            elif copy := self._add_copied_stream(stream, settings):
                self.copies[stream.index] = copy
        self._copy_metadata(source)

    @property
    def copied_stream_indices(self) -> frozenset[int]:
        return frozenset(self.copies)

    # -- setup ---------------------------------------------------------------------------

    def _add_copied_video_stream(
        self, template: av.video.stream.VideoStream
    ) -> av.video.stream.VideoStream:
        stream = self.container.add_stream_from_template(template)
        stream.time_base = template.time_base
        if self.info.rotation:
            stream.set_display_rotation(self.info.rotation)
        return stream

    def _add_encoded_video_stream(
        self, settings: OutputSettings
    ) -> av.video.stream.VideoStream:
        info = self.info
        try:
            codec = av.Codec(settings.codec, "w")
        except (av.error.FFmpegError, ValueError):
            raise SettingsError(
                f"unknown video encoder {settings.codec!r} (see `vidstyle info` for encoders)"
            ) from None
        if codec.canonical_name not in self.container.supported_codecs:
            raise SettingsError(
                f"{self.path.suffix or self.container.format.name} files cannot hold "
                f"{settings.codec} video; pick another --codec or output extension"
            )
        stream = self.container.add_stream(
            settings.codec,
            rate=info.frame_rate or Fraction(25),
            options=encoder_options(settings.codec, settings.crf, settings.preset),
        )
        ctx = stream.codec_context
        ctx.width, ctx.height = info.width, info.height
        ctx.pix_fmt = output_pix_fmt(
            codec, settings.pix_fmt, info.pix_fmt, (info.width, info.height)
        )
        # Keep the input's clock: every frame keeps its own timestamp (VFR stays VFR).
        ctx.time_base = info.time_base
        stream.time_base = info.time_base
        ctx.color_range = _FULL_RANGE if info.pix_fmt.startswith("yuvj") else info.color_range
        ctx.colorspace = info.colorspace
        ctx.color_primaries = info.color_primaries
        ctx.color_trc = info.color_trc
        if info.rotation:
            # Same display matrix as the input: a portrait phone clip plays upright.
            stream.set_display_rotation(info.rotation)
        return stream

    def _add_copied_stream(
        self, source: av.stream.Stream, settings: OutputSettings
    ) -> CopiedStream | None:
        kind = source.type
        codec = source.codec_context.codec.canonical_name if source.codec_context else None
        if codec is None:
            # No codec: an MP4 chapter text track or similar; chapters are copied
            # through the container's chapter list instead.
            self.report.dropped.append(source.index)
            return None
        if kind not in ("audio", "subtitle"):
            self._drop(source, f"{kind} stream ({codec}) not carried over")
            return None
        if codec in self.container.supported_codecs:
            output = self.container.add_stream_from_template(source)
            output.metadata.update(source.metadata)
            self.report.copied.append(source.index)
            return CopiedStream(source, output, transcode=False)
        if kind == "subtitle":
            self._drop(source, f"{codec} subtitles cannot go into {self.path.suffix} files")
            return None
        return self._add_transcoded_audio(source, settings)

    def _add_transcoded_audio(self, source, settings: OutputSettings) -> CopiedStream:
        supported = self.container.supported_codecs
        codec = settings.audio_codec
        if codec not in supported:
            codec = self.container.default_audio_codec
        ctx = source.codec_context
        rate = _encoder_rate(av.Codec(codec, "w"), ctx.sample_rate)
        output = self.container.add_stream(codec, rate=rate)
        output.codec_context.layout = ctx.layout
        output.codec_context.bit_rate = settings.audio_bitrate
        output.metadata.update(source.metadata)
        encoder = output.codec_context.codec
        sample_format = encoder.audio_formats[0].name if encoder.audio_formats else "fltp"
        resampler = av.AudioResampler(format=sample_format, layout=ctx.layout, rate=rate)
        self.report.transcoded.append(source.index)
        return CopiedStream(source, output, transcode=True, resampler=resampler)

    def _drop(self, source, why: str) -> None:
        self.report.dropped.append(source.index)
        self.report.warnings.append(f"stream #{source.index}: {why}")

    def _copy_metadata(self, source: av.container.InputContainer) -> None:
        for key, value in source.metadata.items():
            if key not in ("encoder", "major_brand", "minor_version", "compatible_brands"):
                self.container.metadata[key] = value
        try:
            chapters = source.chapters()
            if chapters:
                self.container.set_chapters(chapters)
        except (AttributeError, av.error.FFmpegError, ValueError) as exc:
            self.report.warnings.append(f"chapters not copied ({exc})")

    # -- writing -------------------------------------------------------------------------

    def write_frame(self, frame: DecodedFrame, image: np.ndarray) -> float | None:
        """Encode `image` with `frame`'s timestamp; return the frame's input time (s)."""
        if self.offset_seconds is None:
            self.offset_seconds = frame.time or 0.0
        out = av.VideoFrame.from_ndarray(image, format="rgb24")
        ctx = self.video.codec_context
        out = out.reformat(
            format=ctx.pix_fmt,
            dst_colorspace=ctx.colorspace if ctx.colorspace != 2 else None,
            dst_color_range=ctx.color_range or None,
        )
        out.color_range = ctx.color_range
        out.colorspace = ctx.colorspace
        out.pts = self._shift(frame.pts, frame.time_base)
        out.time_base = frame.time_base
        if out.pts is not None and frame.duration:
            self._durations[out.pts] = frame.duration
        self._mux(self.video.encode(out))
        return frame.time

    def write_video_packet(self, packet: av.Packet) -> None:
        """An encoded video packet (with `video_template`), timestamps already final."""
        packet.stream = self.video
        self._mux([packet])

    def write_packet(self, packet: av.Packet) -> None:
        """Copy (or transcode) one packet of a non-video stream."""
        copy = self.copies.get(packet.stream.index)
        if copy is None:
            return
        if packet.is_corrupt:
            self._skip(copy, "corrupt packet")
            return
        if self.offset_seconds is None:
            raise RuntimeError("write_packet before the first video frame")
        packet.pts = self._shift(packet.pts, packet.time_base)
        packet.dts = self._shift(packet.dts, packet.time_base)
        if copy.transcode:
            self._transcode(copy, packet)
            return
        packet.stream = copy.output
        self._mux([packet])

    def _transcode(self, copy: CopiedStream, packet: av.Packet) -> None:
        try:
            frames = copy.input.codec_context.decode(packet)
        except (av.error.FFmpegError, ValueError) as exc:
            self._skip(copy, f"undecodable audio packet ({exc})")
            return
        for frame in frames:
            for resampled in copy.resampler.resample(frame):
                self._mux(copy.output.encode(resampled))

    def _skip(self, copy: CopiedStream, why: str) -> None:
        self.report.skipped_packets += 1
        if not copy.warned:
            copy.warned = True
            message = f"stream #{copy.input.index}: skipped a {why}"
            self.report.warnings.append(message)
            log.warning("%s: %s", self.info.path, message)

    def _shift(self, ts: int | None, time_base: Fraction | None) -> int | None:
        if ts is None or not self.offset_seconds or not time_base:
            return ts
        return ts - int(round(self.offset_seconds / time_base))

    def _mux(self, packets) -> None:
        for packet in packets:
            if packet.stream is self.video and packet.pts in self._durations:
                packet.duration = self._durations.pop(packet.pts)
            try:
                self.container.mux(packet)
            except OSError as exc:
                raise _output_error(self.path, exc) from None

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        try:
            self._mux(self.video.encode(None))
            for copy in self.copies.values():
                if copy.transcode:
                    for resampled in copy.resampler.resample(None):
                        self._mux(copy.output.encode(resampled))
                    self._mux(copy.output.encode(None))
            self.container.close()
        except OSError as exc:
            self.abort()
            raise _output_error(self.path, exc) from None

    def abort(self) -> None:
        """Close without caring about the file (it is deleted by the caller)."""
        with contextlib.suppress(Exception):  # the file is being discarded anyway
            self.container.close()


def _encoder_rate(codec: av.Codec, rate: int) -> int:
    """The input's sample rate if the encoder takes it (Opus takes 48 kHz, not 44.1)."""
    rates = codec.audio_rates
    if not rates or rate in rates:
        return rate
    return 48000 if 48000 in rates else max(rates)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _output_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(path, "no space left on device")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(path, "permission denied")
    return OutputError(path, f"write failed ({_reason(exc)})")
