"""Generate the media matrix's inputs with PyAV: any container, video codec, pixel format,
size, audio tracks (codec, start, length), subtitles, chapters, attachments, VFR,
rotation, sample aspect ratio and start offset. A few frames each, so a case costs a
fraction of a second.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from helpers import test_pattern

MS = Fraction(1, 1000)
# An ASS header: the text subtitle encoders refuse to open without one.
ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize, "
    b"PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, "
    b"StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, "
    b"MarginL, MarginR, MarginV, Encoding\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,"
    b"&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,0\n\n[Events]\nFormat: Layer, Start, End, "
    b"Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)
FORMATS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi"}
# Subtitle codec each container holds as text.
SUBTITLE_CODECS = {"mkv": "ass", "mp4": "mov_text", "mov": "mov_text", "webm": "webvtt"}


@dataclass(frozen=True)
class Audio:
    codec: str = "aac"
    start: float = 0.0  # seconds, relative to the video's first frame
    extra: float = 0.0  # seconds beyond the video's end
    rate: int = 48000
    language: str | None = None
    default: bool = False
    forced: bool = False


@dataclass(frozen=True)
class Spec:
    """One input of the matrix."""

    container: str = "mp4"
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    size: tuple[int, int] = (16, 12)
    frames: int = 4
    audio: tuple[Audio, ...] = ()
    subtitles: bool = False
    chapters: bool = False
    attachment: bool = False
    vfr: bool = False
    rotation: int = 0
    sar: Fraction | None = None
    start: float = 0.0  # first video timestamp (s)
    video_language: str | None = None
    tags: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def name(self) -> str:
        w, h = self.size
        bits = [self.container, self.codec, self.pix_fmt, f"{w}x{h}"]
        bits += [f"{a.codec}@{a.start:+g}{'+' + str(a.extra) if a.extra else ''}"
                 for a in self.audio]
        for flag in ("subtitles", "chapters", "attachment", "vfr"):
            if getattr(self, flag):
                bits.append(flag)
        if self.rotation:
            bits.append(f"rot{self.rotation}")
        if self.sar:
            bits.append(f"sar{self.sar.numerator}:{self.sar.denominator}")
        if self.start:
            bits.append(f"start{self.start:g}")
        return "-".join(bits)

    def but(self, **changes) -> Spec:
        return replace(self, **changes)


def frame_times(spec: Spec) -> list[float]:
    """Presentation times (s) of the spec's frames: 25 fps, or uneven steps for VFR."""
    if spec.vfr:
        steps = [0.04, 0.12, 0.02, 0.2, 0.04, 0.08]
        times, t = [], spec.start
        for i in range(spec.frames):
            times.append(round(t, 3))
            t += steps[i % len(steps)]
        return times
    return [round(spec.start + i * 0.04, 3) for i in range(spec.frames)]


def make_media(path: Path, spec: Spec) -> Path:
    """Write `spec` to `path` with PyAV."""
    container = av.open(str(path), "w", format=FORMATS[spec.container])
    avi = spec.container == "avi"
    tick = Fraction(1, 25) if avi else MS
    options = {"preset": "ultrafast", "crf": "20"} if spec.codec.startswith("libx26") else {}
    if spec.codec == "libvpx-vp9":
        options = {"deadline": "realtime", "cpu-used": "8", "crf": "40", "b": "0"}
    video = container.add_stream(spec.codec, rate=25, options=options)
    width, height = spec.size
    video.width, video.height, video.pix_fmt = width, height, spec.pix_fmt
    video.codec_context.time_base = tick
    video.time_base = tick
    if spec.sar:
        video.codec_context.sample_aspect_ratio = spec.sar
    if spec.rotation:
        video.set_display_rotation(spec.rotation)
    if spec.video_language:
        video.metadata["language"] = spec.video_language
    audios = [_add_audio(container, a) for a in spec.audio]
    subtitle = None
    if spec.subtitles:
        subtitle = container.add_stream(SUBTITLE_CODECS[spec.container])
        subtitle.codec_context.subtitle_header = ASS_HEADER
        subtitle.metadata["language"] = "spa"
    if spec.attachment:
        container.add_attachment("font.ttf", "application/x-truetype-font", b"\0FONT" * 40)
    if spec.chapters:
        end = int(frame_times(spec)[-1] * 1000) + 40
        container.set_chapters([
            {"id": 1, "start": 0, "end": end // 2, "time_base": MS, "metadata": {"title": "A"}},
            {"id": 2, "start": end // 2, "end": end, "time_base": MS,
             "metadata": {"title": "B"}},
        ])
    for key, value in spec.tags.items():
        container.metadata[key] = value
    times = frame_times(spec)
    packets = []
    for i, t in enumerate(times):
        frame = av.VideoFrame.from_ndarray(test_pattern(width, height, i), format="rgb24")
        frame = frame.reformat(format=spec.pix_fmt)
        frame.pts, frame.time_base = round(t / tick), tick
        packets += video.encode(frame)
    packets += video.encode(None)
    video_end = times[-1] + 0.04
    for stream, audio in zip(audios, spec.audio, strict=True):
        packets += _tone_packets(stream, audio, spec.start, video_end)
    if subtitle is not None:
        packets.append(_subtitle_packet(subtitle, spec))
    # Interleave by time, as a muxer of a real recorder would.
    packets.sort(key=lambda p: float((p.dts if p.dts is not None else p.pts or 0)
                                     * p.time_base))
    for packet in packets:
        container.mux(packet)
    container.close()
    return path


def _add_audio(container, audio: Audio):
    stream = container.add_stream(audio.codec, rate=audio.rate)
    stream.codec_context.layout = "stereo"
    if audio.language:
        stream.metadata["language"] = audio.language
    flags = av.stream.Disposition(0)
    if audio.default:
        flags |= av.stream.Disposition.default
    if audio.forced:
        flags |= av.stream.Disposition.forced
    stream.disposition = flags
    return stream


def _tone_packets(stream, audio: Audio, video_start: float, video_end: float) -> list:
    ctx = stream.codec_context
    rate = ctx.sample_rate
    size = ctx.frame_size or 1024
    fmt = ctx.codec.audio_formats[0].name if ctx.codec.audio_formats else "fltp"
    begin = max(video_start + audio.start, 0.0)
    total = int((video_end + audio.extra - begin) * rate)
    packets = []
    offset = round(begin * rate)
    for start in range(0, total, size):
        n = min(size, total - start) if ctx.frame_size == 0 else size
        t = (np.arange(start, start + n) / rate).astype(np.float64)
        tone = (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp",
                                           layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, offset + start, Fraction(1, rate)
        if fmt != "fltp":
            frame = av.AudioResampler(format=fmt, layout="stereo", rate=rate).resample(frame)[0]
            frame.pts, frame.time_base = offset + start, Fraction(1, rate)
        packets += stream.encode(frame)
    packets += stream.encode(None)
    return packets


def _subtitle_packet(stream, spec: Spec):
    text = b"Hello"
    payload = struct.pack(">H", len(text)) + text if stream.codec_context.name == "mov_text" \
        else (b"0,0,Default,,0,0,0,,Hello" if stream.codec_context.name == "ass" else text)
    packet = av.Packet(payload)
    packet.pts = packet.dts = round(spec.start * 1000)
    packet.duration = 100
    packet.time_base = MS
    packet.stream = stream
    return packet
