"""Which of an input's other streams an output carries, and how: audio, subtitles and
attachments are copied untouched when the output container proves it takes them (a trial
mux of their first packets); audio it refuses is transcoded (vidstyle.media.audio); a
timecode track is written anew from the video's timecode; a data track with a codec
(GoPro's gpmd) is copied where the muxer holds it; what cannot be carried is dropped with
a warning that names it and why. Container metadata and chapters are copied too."""

from __future__ import annotations

import contextlib
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import av

from vidstyle.config import OutputSettings
from vidstyle.media.audio import (
    AudioTranscoder,
    audio_encoder,
    audio_encoder_refusal,
    encoder_rate,
    known_layout,
)
from vidstyle.media.policy import AVI_FORMATS
from vidstyle.media.probe import MARK_KEY, MARK_VALUE, MediaInfo, error_reason, open_input
from vidstyle.media.report import CHAPTER_TRACK, MuxReport

# AVI times an audio track by counting fixed-size frames. Copied packets of other codecs
# come out short: measured with PyAV 18 / FFmpeg 8.1, 2.0 s of AC-3 copied into AVI read
# back as 0.42 s, AAC as 0.02 s, FLAC as 0.006 s; MP3, MP2 and PCM kept their length.
# Those are copied, anything else is re-encoded (which AVI times correctly).
_AVI_COPYABLE_AUDIO = ("mp1", "mp2", "mp3")
# Packets muxed into a scratch file to prove the container takes a copied stream (some
# refusals come only at the trailer: PCM from Matroska into MP4).
TRIAL_PACKETS = 16
# Stream keys the muxer recomputes (Matroska's per-stream statistics would be wrong).
_STALE_STREAM_KEYS = ("duration", "encoder", "_statistics_tags", "_statistics_writing_app",
                      "_statistics_writing_date_utc", "number_of_frames", "number_of_bytes",
                      "bps")
AVDISCARD_ALL = 48  # FFmpeg's mark on a stream its demuxer hands out no packets of
# Output formats that keep a start timecode, and how: the MOV/MP4 muxer writes a new tmcd
# track from the video stream's timecode tag; Matroska keeps the tag itself.
TIMECODE_CARRIERS = {
    "mov": "written as a new tmcd track", "mp4": "written as a new tmcd track",
    "matroska": "kept as the video stream's TIMECODE tag",
    "webm": "kept as the video stream's TIMECODE tag",
}


@dataclass
class CopiedStream:
    """How one non-video input stream reaches the output: its packets copied, or
    through `transcoder`."""

    input: av.stream.Stream
    output: av.stream.Stream
    transcoder: AudioTranscoder | None = None
    warned: bool = False

    @property
    def transcode(self) -> bool:
        return self.transcoder is not None


class StreamPlan:
    """Adds to `container` the output stream each carried input stream gets, and
    records every stream's fate in `report`."""

    def __init__(self, container: av.container.OutputContainer, path: Path, info: MediaInfo,
                 report: MuxReport) -> None:
        self.container = container
        self.path = path
        self.info = info
        self.report = report
        self.format = container.format.name

    def add(self, source: av.stream.Stream, settings: OutputSettings) -> CopiedStream | None:
        """Set up `source`'s output; None when nothing of it is muxed packet by packet."""
        kind = source.type
        if kind == "attachment":
            self._add_attachment(source)
            return None
        if kind == "data":
            return self._add_data_stream(source)
        codec = source.codec_context.codec.canonical_name if source.codec_context else None
        if codec is None or kind not in ("audio", "subtitle"):
            self.report.drop(source, f"{kind} streams ({codec or 'no codec'}) are not "
                                     "carried over")
            return None
        refusal = self._copy_refusal(source, codec)
        if refusal is None:
            output = self.container.add_stream_from_template(source)
            carry_stream_tags(source, output)
            self.report.record(source, "copied")
            self.report.copied.append(source.index)
            return CopiedStream(source, output)
        if kind == "subtitle":
            self.report.drop(source, f"{codec} subtitles cannot go into "
                                     f"{self.format_label()} files ({refusal})")
            return None
        return self._add_transcoded_audio(source, settings, refusal)

    def format_label(self) -> str:
        return (self.path.suffix or self.format).lstrip(".").upper()

    def _add_data_stream(self, source: av.stream.Stream) -> CopiedStream | None:
        """Camera tracks: a timecode track is written anew from the video's timecode
        where the format keeps one; a data track with a codec (GoPro's gpmd telemetry,
        KLV) is copied with its timing where the muxer takes it, else dropped with a
        warning naming it. A track FFmpeg discards or that has no codec is taken for an
        MP4 chapter list (copied as chapters) unless the input has no chapters."""
        codec = getattr(source, "name", None)
        if is_timecode_track(source):
            self._timecode_fate(source)
            return None
        if codec is None or _demuxer_discards(source):
            # FFmpeg reads MP4's chapter text track as a data track it discards.
            self.report.record(source, "dropped", CHAPTER_TRACK)
            return None
        label = _track_label(source, codec)
        refusal = trial_mux(self.info.path, source.index, self.format)
        if refusal is not None:
            self.report.drop(source, f"data track {label} cannot go into "
                                     f"{self.format_label()} files ({refusal})", codec=codec)
            return None
        output = self.container.add_stream_from_template(source)
        carry_stream_tags(source, output)
        self.report.record(source, "copied", f"data track {label}", codec=codec)
        self.report.copied.append(source.index)
        return CopiedStream(source, output)

    def _timecode_fate(self, source: av.stream.Stream) -> None:
        timecode = self.info.timecode
        how = TIMECODE_CARRIERS.get(self.format)
        if timecode is None or how is None:
            self.report.drop(source, f"timecode {timecode or '(unreadable)'}: "
                                     f"{self.format_label()} files hold no timecode",
                             codec="tmcd")
            return
        self.report.record(source, "regenerated", f"timecode {timecode}: {how}",
                           codec="tmcd")

    def _copy_refusal(self, source: av.stream.Stream, codec: str) -> str | None:
        """Why `source`'s packets cannot be copied into this output, or None."""
        if codec not in self.container.supported_codecs:
            return "the container does not take that codec"
        if (self.format in AVI_FORMATS and source.type == "audio"
                and codec not in _AVI_COPYABLE_AUDIO and not codec.startswith("pcm_")):
            return "AVI would mistime copied packets of that codec"
        return trial_mux(self.info.path, source.index, self.format)

    def _add_transcoded_audio(self, source, settings: OutputSettings,
                              refusal: str) -> CopiedStream | None:
        ctx = source.codec_context
        codec = audio_encoder(self.format, self.container.supported_codecs,
                              settings.audio_codec, ctx.codec.name,
                              self.container.default_audio_codec)
        if codec is None or ctx.codec is None or not ctx.sample_rate:
            self.report.drop(source, f"{ctx.name} audio cannot go into {self.format_label()} "
                                     f"files ({refusal}), and no encoder for it is available")
            return None
        rate = encoder_rate(codec, ctx.sample_rate)
        layout = known_layout(ctx.layout)
        refused = audio_encoder_refusal(codec, rate, layout, settings.audio_bitrate)
        if refused:
            self.report.drop(source, f"{ctx.name} audio cannot go into {self.format_label()} "
                                     f"files ({refusal}), and {codec.name} refused it "
                                     f"({refused})")
            return None
        output = self.container.add_stream(codec.name, rate=rate)
        output.codec_context.layout = layout
        output.codec_context.bit_rate = settings.audio_bitrate
        carry_stream_tags(source, output)
        encoder = output.codec_context.codec
        sample_format = encoder.audio_formats[0].name if encoder.audio_formats else "fltp"
        resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate)
        self.report.record(source, "transcoded", f"to {codec.name}: {refusal}")
        self.report.transcoded.append(source.index)
        return CopiedStream(source, output, AudioTranscoder(source, output, resampler))

    def _add_attachment(self, source) -> None:
        """Matroska attachments (fonts for styled subtitles, cover art)."""
        name = getattr(source, "name", None) or f"attachment{source.index}"
        mimetype = getattr(source, "mimetype", None) or "application/octet-stream"
        data = bytes(getattr(source, "data", b"") or b"")
        refusal = trial_attachment(self.format, name, mimetype, data)
        if refusal is not None:
            self.report.drop(source, f"attachment {name} cannot go into "
                                     f"{self.format_label()} files ({refusal})", codec=mimetype)
            return
        self.container.add_attachment(name, mimetype, data)
        self.report.record(source, "copied", codec=mimetype)

    def copy_metadata(self, source: av.container.InputContainer) -> None:
        """The input's container metadata (less what the muxer rewrites), vidstyle's
        mark, and the chapters; a codec-less track that was not a chapter list is then
        reported dropped."""
        for key, value in source.metadata.items():
            if key.lower() not in ("encoder", "major_brand", "minor_version",
                                   "compatible_brands", MARK_KEY):
                self.container.metadata[key] = value
        self.container.metadata[MARK_KEY] = MARK_VALUE
        chapters = None
        try:
            chapters = source.chapters()
            if chapters:
                self.container.set_chapters(chapters)
        except (AttributeError, av.error.FFmpegError, ValueError) as exc:
            self.report.warnings.append(f"chapters not copied ({exc})")
            chapters = None
        if not chapters:
            for fate in self.report.streams:
                if fate.why == CHAPTER_TRACK:  # a codec-less track that was not chapters
                    fate.why = "stream without a codec: not carried over"
                    self.report.warnings.append(f"stream #{fate.index} dropped: {fate.why}")


def carry_stream_tags(source: av.stream.Stream, output: av.stream.Stream) -> None:
    """Language, title, handler and disposition (default, forced...) of a stream."""
    for key, value in source.metadata.items():
        if key.lower() not in _STALE_STREAM_KEYS and not key.upper().startswith("DURATION"):
            output.metadata[key] = value
    with contextlib.suppress(AttributeError, ValueError, TypeError):
        output.disposition = source.disposition


def is_timecode_track(stream: av.stream.Stream) -> bool:
    """A MOV/MP4 `tmcd` track: a codec-less data track that states a timecode."""
    return (stream.type == "data" and getattr(stream, "name", None) is None
            and any(key.lower() == "timecode" for key in stream.metadata))


def _demuxer_discards(stream: av.stream.Stream) -> bool:
    with contextlib.suppress(TypeError, ValueError):
        return int(stream.discard) >= AVDISCARD_ALL
    return False


def _track_label(stream: av.stream.Stream, codec: str) -> str:
    """#2 (bin_data, "GoPro MET"): what a warning calls a track."""
    handler = stream.metadata.get("handler_name")
    return f"#{stream.index} ({codec}{f', {handler!r}' if handler else ''})"


def trial_mux(path: Path, index: int, format_name: str) -> str | None:
    """Copy the first packets of stream `index` of `path` into a scratch `format_name`
    file; None if that works, else why not (some refusals come only at the trailer)."""
    try:
        with open_input(path) as source:
            stream = source.streams[index]
            with av.open(io.BytesIO(), "w", format=format_name) as trial:
                output = trial.add_stream_from_template(stream)
                packets = (p for p in source.demux(stream) if p.dts is not None and p.size)
                for packet in itertools.islice(packets, TRIAL_PACKETS):
                    packet.stream = output
                    trial.mux(packet)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        return error_reason(exc)
    return None


def trial_attachment(format_name: str, name: str, mimetype: str, data: bytes) -> str | None:
    """None if `format_name` files take an attachment, else why not."""
    try:
        with av.open(io.BytesIO(), "w", format=format_name) as trial:
            trial.add_attachment(name, mimetype, data)
            trial.start_encoding()
    except (av.error.FFmpegError, ValueError, OSError, AttributeError) as exc:
        return error_reason(exc) or "not supported"
    return None
