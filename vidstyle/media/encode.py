"""The writer core: encode stylized frames and mux them beside the input's other streams.

The video stream is set up by the codec policy (vidstyle.media.policy) and the colour plan
(vidstyle.media.color: SDR BT.709, or the input's HDR format with --hdr input); every other
stream goes where vidstyle.media.streams decides (copied, transcoded through
vidstyle.media.audio, regenerated, or dropped by name), and vidstyle.media.report says what
became of each. Every timestamp is the input's, so variable frame rate stays variable and
the streams stay in sync.
"""

from __future__ import annotations

import contextlib
import errno
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidstyle.config import HDR_INPUT, OutputSettings
from vidstyle.errors import InputError, OutputError, SettingsError
from vidstyle.media import color
from vidstyle.media.decode import DecodedFrame
from vidstyle.media.encoders import open_refusal
from vidstyle.media.policy import (
    AUTO_CODEC,
    AVI_FORMATS,
    VideoChoice,
    bit_depth,
    choose_video,
    encoder,
    sample_entry,
)
from vidstyle.media.probe import MediaInfo, error_reason
from vidstyle.media.report import CHAPTER_TRACK, MuxReport, StreamFate
from vidstyle.media.streams import CopiedStream, StreamPlan, carry_stream_tags

# Names callers import from here (the writer's report used to live in this module).
__all__ = ["CHAPTER_TRACK", "MuxReport", "StreamFate", "VideoWriter", "check_encoder",
           "encoder_options", "output_pix_fmt"]

# Pixel formats we prefer, per encoder; the first one the encoder supports wins.
# yuvj420p (JPEG full range) is written as yuv420p with the range flag set: the "j"
# formats are deprecated and the flag keeps full-range input correct.
_PREFERRED_PIX_FMTS = {
    "prores_ks": ("yuv422p10le",),
    "libsvtav1": ("yuv420p10le", "yuv420p"),
}
_FULL_RANGE = 2

# x264's and x265's preset names (their documentation; an unknown one fails the encoder's
# open with only "Invalid argument").
_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow", "placebo")
_PRESETS = {"libx264": _X26X_PRESETS, "libx264rgb": _X26X_PRESETS, "libx265": _X26X_PRESETS}
# Formats that store no presentation timestamps (AVI has one slot per frame tick): an
# encoder that reorders frames (B-frames) shifts the whole picture against the audio
# (seen: first frame at 0.167 s), so their encoders run without B-frames.
_NO_REORDER_FORMATS = AVI_FORMATS
# A video packet decoded this long before it is shown has a broken decode time.
MAX_REORDER_SECONDS = 3600


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
    if codec == "mpeg4":
        # A fixed quantiser, from the CRF scale (0..51) to MPEG-4's (2..31): CRF 18 -> 3.
        # global_quality is in lambda units (FF_QP2LAMBDA = 118 per quantiser step).
        quantiser = min(max(round(crf / 6), 2), 31)
        return {"flags": "+qscale", "global_quality": str(quantiser * 118)}
    return {}


def output_pix_fmt(
    codec: av.Codec, wanted: str | None, input_pix_fmt: str, size: tuple[int, int],
    bits: int = 8,
) -> str:
    """The encoder's pixel format: asked for, else preferred, else the input's, at the
    `bits` the policy chose (vidstyle.media.policy).

    Odd sizes cannot be chroma-subsampled (x264 refuses 641x337 in 4:2:0), so those
    fall back to 4:4:4 rather than changing the picture size.
    """
    supported = [f.name for f in (codec.video_formats or ())]
    odd = any(side % 2 for side in size)
    candidates = [wanted] if wanted else []
    candidates += [f for f in _PREFERRED_PIX_FMTS.get(codec.name, ()) if bit_depth(f) == bits]
    candidates += [at_depth(input_pix_fmt.replace("yuvj", "yuv"), bits),
                   at_depth("yuv420p", bits), at_depth("yuv444p", bits)]
    candidates += list(_PREFERRED_PIX_FMTS.get(codec.name, ())) + ["yuv420p", "yuv444p"]
    for name in candidates:
        if not name or (supported and name not in supported):
            continue
        if odd and _subsampled(name):
            continue
        return name
    return supported[0]


def at_depth(pix_fmt: str, bits: int) -> str:
    """`pix_fmt` at 8 or 10 bits per sample: yuv420p10le <-> yuv420p."""
    base = pix_fmt
    for suffix in ("10le", "12le", "16le", "10be", "12be", "16be"):
        base = base.removesuffix(suffix)
    if bits == 8:
        return base
    return f"{base}10le" if base.startswith("yuv") else pix_fmt


def _subsampled(pix_fmt: str) -> bool:
    probe_format = av.VideoFormat(pix_fmt, 16, 16)
    return any(c.width != 16 or c.height != 16 for c in probe_format.components)


class VideoWriter:
    """Writes one output file: the stylized video stream plus copied/transcoded streams.

    Streams are set up at construction, and the encoder options are proven there (an
    unknown preset is a `SettingsError` before any frame is decoded); nothing is written
    to disk until the first video frame arrives, so the file header always describes a
    playable video.
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
        self.frames_written = 0
        self._early: list[av.Packet] = []
        # HDR input: the frames arrive tone-mapped to SDR; `hdr_out` is the HDR format
        # they are mapped back to (--hdr input), None when SDR BT.709 is written.
        self.hdr_out = info.hdr if info.hdr is not None and settings.hdr == HDR_INPUT \
            else None
        try:
            self.container = av.open(str(path), mode="w", format=format_name)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise OutputError(path, f"cannot create output ({error_reason(exc)})") from None
        self.format = self.container.format.name
        if self.format in ("mp4", "mov", "ipod", "3gp"):
            # Without it the MP4 muxer keeps only iTunes' keys and drops vidstyle's mark.
            self.container.options["movflags"] = "use_metadata_tags"
        self._durations: dict[int, int] = {}
        self._leading_ticks: int | None = None  # see _hold_first_tick
        self.copies: dict[int, CopiedStream] = {}
        plan = StreamPlan(self.container, path, info, self.report)
        # Add the output streams in the input's order, so stream #N stays stream #N.
        video_index = source.streams.video[0].index
        for stream in source.streams:
            if stream.index == video_index:
                self.video = (self._add_encoded_video_stream(settings) if video_template is None
                              else self._add_copied_video_stream(video_template))
                carry_stream_tags(stream, self.video)
                if info.timecode:  # where a tmcd track or a TIMECODE tag comes from
                    self.video.metadata["timecode"] = info.timecode
                self.report.record(stream, "stylized" if video_template is None else "copied",
                                   self._colour_note())
            elif video_only:
                continue
            elif copy := plan.add(stream, settings):
                self.copies[stream.index] = copy
        plan.copy_metadata(source)

    def _colour_note(self) -> str:
        """The one line that says what became of an HDR input's picture."""
        hdr = self.info.hdr
        if hdr is None:
            return ""
        if self.hdr_out is not None:
            note = (f"{hdr.describe()} kept: tone-mapped to SDR for the network (BT.2390), "
                    f"mapped back to {hdr.name} and tagged so")
        else:
            note = (f"{hdr.describe()} tone-mapped to SDR BT.709 (BT.2390) and tagged so; "
                    "--hdr input writes it back as HDR")
        if hdr.dolby_vision:
            note += ("; Dolby Vision: the base layer is written, its metadata cannot "
                     "survive re-encoding")
        return note

    @property
    def copied_stream_indices(self) -> frozenset[int]:
        return frozenset(self.copies)

    # -- setup ---------------------------------------------------------------------------

    def _add_copied_video_stream(
        self, template: av.video.stream.VideoStream
    ) -> av.video.stream.VideoStream:
        stream = self.container.add_stream_from_template(template)
        stream.time_base = template.time_base
        entry = sample_entry(template.codec_context.name, self.format)
        if entry:  # joined segments keep the sample entry the policy gives their codec
            stream.codec_context.codec_tag = entry
        if self.info.rotation:
            stream.set_display_rotation(self.info.rotation)
        return stream

    def _add_encoded_video_stream(
        self, settings: OutputSettings
    ) -> av.video.stream.VideoStream:
        info = self.info
        choice = self._video_codec(settings.codec, keep_hdr=self.hdr_out is not None)
        codec = choice.encoder
        options = encoder_options(codec.name, settings.crf, settings.preset)
        if self.format in _NO_REORDER_FORMATS:
            options["bf"] = "0"
        if self.hdr_out is not None and codec.name == "libx265":
            # The mastering display and light level go into the HEVC stream's SEI.
            params = color.x265_hdr_params(self.hdr_out)
            options["x265-params"] = ":".join(p for p in (options.get("x265-params"), params)
                                              if p)
        if codec.name == "libx265":
            # x265 prints its settings to stderr for every file; errors still show.
            options["x265-params"] = ":".join(
                p for p in ("log-level=error", options.get("x265-params")) if p)
        rate = info.frame_rate or Fraction(25)
        pix_fmt = output_pix_fmt(codec, settings.pix_fmt, info.pix_fmt,
                                 (info.width, info.height), bits=choice.bits)
        check_encoder(codec.name, options, (info.width, info.height), pix_fmt, rate, settings,
                      label=str(info.path))
        stream = self.container.add_stream(codec.name, rate=rate, options=options)
        ctx = stream.codec_context
        ctx.width, ctx.height = info.width, info.height
        ctx.pix_fmt = pix_fmt
        if choice.sample_entry:
            ctx.codec_tag = choice.sample_entry
        if info.sample_aspect_ratio:
            # Non-square pixels (anamorphic DVD, 2:1 test charts): without it the picture
            # plays squeezed.
            ctx.sample_aspect_ratio = info.sample_aspect_ratio
        # Keep the input's clock: every frame keeps its own timestamp (VFR stays VFR).
        ctx.time_base = info.time_base
        stream.time_base = info.time_base
        self._set_colour_tags(ctx)
        if info.rotation:
            # Same display matrix as the input: a portrait phone clip plays upright.
            stream.set_display_rotation(info.rotation)
        return stream

    def _set_colour_tags(self, ctx: av.video.codeccontext.VideoCodecContext) -> None:
        """Tags that say what the written pixels are: the input's for SDR input; for HDR
        input, SDR BT.709 (what the tone map made) or the input's HDR format (with
        `--hdr input`, the pixels mapped back). Never the input's transfer on pixels that
        were not encoded with it."""
        info = self.info
        if info.hdr is None:
            ctx.color_range = _FULL_RANGE if info.pix_fmt.startswith("yuvj") \
                else info.color_range
            ctx.colorspace = info.colorspace
            ctx.color_primaries = info.color_primaries
            ctx.color_trc = info.color_trc
            return
        tags = self.hdr_out or color.HdrFormat(color.TRC_BT709, color.PRIMARIES_BT709,
                                               color.MATRIX_BT709)
        ctx.color_range = color.RANGE_LIMITED
        ctx.colorspace = tags.matrix
        ctx.color_primaries = tags.primaries
        ctx.color_trc = tags.transfer

    def _video_codec(self, name: str, *, keep_hdr: bool) -> VideoChoice:
        """The encoder `name` names, or with "auto" the one the policy picks
        (vidstyle.media.policy: the input's family where this format takes it)."""
        supported = self.container.supported_codecs
        if keep_hdr and self.format in AVI_FORMATS:
            self._refuse_hdr()
        choice = choose_video(self.format, supported, wanted=name,
                              input_codec=self.info.codec,
                              input_bits=bit_depth(self.info.pix_fmt), keep_hdr=keep_hdr)
        if name != AUTO_CODEC:
            if choice is None:
                raise SettingsError(
                    f"unknown video encoder {name!r} (see `vidstyle info` for encoders)")
            if choice.encoder.canonical_name not in supported:
                raise SettingsError(
                    f"{self.info.path}: {self.path.suffix or self.format} files cannot hold "
                    f"{name} video; "
                    "pick another --codec (or leave it at auto) or another output extension"
                )
            return choice
        if choice is not None:
            return choice
        if not keep_hdr and (default := encoder(self.container.default_video_codec)):
            return VideoChoice(default, 8, None, "the format's default")
        if keep_hdr:
            self._refuse_hdr()
        raise SettingsError(f"{self.path.suffix or self.format} files take no video encoder "
                            "this PyAV build has; pick another output extension")

    def _refuse_hdr(self) -> None:
        raise SettingsError(f"{self.info.path}: {self.path.suffix or self.format} files "
                            "cannot keep its HDR (--hdr input); write .mp4, .mov, .mkv or "
                            ".webm")

    # -- writing -------------------------------------------------------------------------

    def write_frame(self, frame: DecodedFrame, image: np.ndarray) -> float | None:
        """Encode `image` with `frame`'s timestamp; return the frame's input time (s)."""
        if self.offset_seconds is None:
            self.offset_seconds = frame.time or 0.0
        ctx = self.video.codec_context
        if self.hdr_out is not None:
            out = color.encode_hdr_frame(image, self.hdr_out, ctx.pix_fmt)
        else:
            out = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                format=ctx.pix_fmt,
                dst_colorspace=ctx.colorspace if ctx.colorspace != 2 else None,
                dst_color_range=ctx.color_range or None,
            )
        out.color_range = ctx.color_range
        out.colorspace = ctx.colorspace
        out.color_primaries = ctx.color_primaries
        out.color_trc = ctx.color_trc
        out.pts = self._shift(frame.pts, frame.time_base)
        out.time_base = frame.time_base
        if out.pts is not None and frame.duration:
            self._durations[out.pts] = frame.duration
        self._mux(self.video.encode(out))
        self.frames_written += 1
        self._flush_early()
        return frame.time

    def write_video_packet(self, packet: av.Packet) -> None:
        """An encoded video packet (with `video_template`), timestamps already final."""
        packet.stream = self.video
        self._mux([packet])
        self.frames_written += 1
        self._flush_early()

    def write_packet(self, packet: av.Packet) -> None:
        """Copy (or transcode) one packet of a non-video stream."""
        copy = self.copies.get(packet.stream.index)
        if copy is None:
            return
        if self.frames_written == 0:
            # The header waits for the first frame, and a rebased clock for its time.
            self._early.append(packet)
            return
        if packet.is_corrupt:
            self._skip(copy, "a damaged packet of the input")
            return
        packet.pts = self._shift(packet.pts, packet.time_base)
        packet.dts = self._shift(packet.dts, packet.time_base)
        if copy.transcoder is not None:
            self._transcode(copy, packet)
            return
        packet.stream = copy.output
        self._mux_other(copy, packet)

    def _flush_early(self) -> None:
        early, self._early = self._early, []
        for packet in early:
            self.write_packet(packet)

    def _transcode(self, copy: CopiedStream, packet: av.Packet) -> None:
        try:
            packets = copy.transcoder.transcode(packet)
        except (av.error.FFmpegError, ValueError) as exc:
            self._skip(copy, f"a damaged audio packet of the input that does not decode ({exc})")
            return
        for encoded in packets:
            self._mux_other(copy, encoded)

    def _skip(self, copy: CopiedStream, why: str, *, refused: bool = False) -> None:
        """Count a packet left out: the input's damage (warned once per track), or one
        the muxer `refused` (vidstyle's loss)."""
        self.report.skipped_packets += 1
        self.report.refused_packets += refused
        if not copy.warned:
            copy.warned = True
            filled = " (filled with silence)" if copy.transcode else ""
            self.report.warnings.append(f"stream #{copy.input.index}: skipped {why}{filled}")

    def _shift(self, ts: int | None, time_base: Fraction | None) -> int | None:
        if ts is None or not self.offset_seconds or not time_base:
            return ts
        return ts - int(round(self.offset_seconds / time_base))

    def _mux(self, packets) -> None:
        for packet in packets:
            if packet.stream is self.video and packet.pts in self._durations:
                packet.duration = self._durations.pop(packet.pts)
            if packet.stream is self.video:
                self._repair_decode_time(packet)
                if self._leading_ticks is None:
                    self._leading_ticks = self._hold_first_tick(packet)
            try:
                self.container.mux(packet)
            except OSError as exc:
                raise _output_error(self.path, exc) from None
            except (av.error.FFmpegError, ValueError) as exc:
                raise OutputError(self.path, f"cannot write the video ({error_reason(exc)})") \
                    from None

    def _repair_decode_time(self, packet: av.Packet) -> None:
        """x265 (4.2, through FFmpeg 8.1) gives the packets of a clip of one or two
        frames coded with mastering-display SEI garbage decode times
        (-6585770520982412133, measured), which the MOV muxer refuses. Such a clip has
        no frame to reorder: a decode time after its presentation time or an hour away
        from it becomes the presentation time."""
        pts, dts = packet.pts, packet.dts
        if pts is None or dts is None or not packet.time_base:
            return
        if dts > pts or (pts - dts) * packet.time_base > MAX_REORDER_SECONDS:
            packet.dts = pts

    def _hold_first_tick(self, packet: av.Packet) -> int:
        """AVI times a frame by its chunk's place, and FFmpeg's AVI muxer fills gaps with
        empty chunks only after the first one: a video whose first frame is at tick 1
        (an input with B-frames, decoded from 0.0417 s at 24 fps) would move to 0. An
        empty chunk at tick 0 first keeps it in place (read back, it is no frame)."""
        ticks = packet.dts if packet.dts is not None else packet.pts
        if self.format not in _NO_REORDER_FORMATS or not ticks or ticks <= 0:
            return 0
        empty = av.Packet(b"")
        empty.stream, empty.time_base = self.video, packet.time_base
        empty.pts = empty.dts = 0
        try:
            self.container.mux(empty)
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            raise OutputError(self.path, f"cannot write the video ({error_reason(exc)})") \
                from None
        return ticks

    def _mux_other(self, copy: CopiedStream, packet: av.Packet) -> None:
        """Mux one packet of a non-video stream; one the muxer refuses (a damaged
        timestamp that goes backwards) is skipped, never the end of the job."""
        try:
            self.container.mux(packet)
        except OSError as exc:
            raise _output_error(self.path, exc) from None
        except (av.error.FFmpegError, ValueError) as exc:
            self._skip(copy, f"a packet the muxer refused ({error_reason(exc)})", refused=True)

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        if self.frames_written == 0:
            self.abort()
            raise InputError(self.info.path, "no video frame to write in the selected span")
        try:
            self._mux(self.video.encode(None))
            for copy in self.copies.values():
                if copy.transcoder is not None:
                    self._flush_audio(copy)
            self.container.close()
        except OSError as exc:
            self.abort()
            raise _output_error(self.path, exc) from None
        except (av.error.FFmpegError, ValueError) as exc:
            self.abort()
            raise OutputError(self.path, f"cannot finish the file ({error_reason(exc)})") from None

    def _flush_audio(self, copy: CopiedStream) -> None:
        for encoded in copy.transcoder.flush():
            self._mux_other(copy, encoded)
        self.report.silence_seconds += copy.transcoder.silence_seconds

    def abort(self) -> None:
        """Close without caring about the file (it is deleted by the caller)."""
        with contextlib.suppress(Exception):  # the file is being discarded anyway
            self.container.close()


def check_encoder(name: str, options: dict[str, str], size: tuple[int, int], pix_fmt: str,
                  rate: Fraction, settings: OutputSettings, *, label: str = "") -> None:
    """Open the encoder once with the job's options, so that an unknown --preset or a
    --crf it refuses is one line before any frame is decoded, not a traceback after."""
    head = f"{label}: " if label else ""
    presets = _PRESETS.get(name)
    if presets and "preset" in options and options["preset"] not in presets:
        raise SettingsError(f"{head}unknown --preset {options['preset']!r} for {name}: "
                            f"choose one of {', '.join(presets)}")
    ctx = av.CodecContext.create(name, "w")
    ctx.width, ctx.height = size
    ctx.pix_fmt = pix_fmt
    ctx.time_base = 1 / Fraction(rate)
    ctx.framerate = Fraction(rate)
    ctx.options = dict(options)
    refusal = open_refusal(ctx)
    if refusal is not None:
        given = ", ".join(f"{k} {v}" for k, v in options.items()) or "defaults"
        raise SettingsError(
            f"{head}encoder {name} refused its settings ({given}; --preset {settings.preset!r}, "
            f"--crf {settings.crf}): {refusal}"
        )


def _output_error(path: Path, exc: OSError) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(path, "no space left on device")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(path, "permission denied")
    return OutputError(path, f"write failed ({error_reason(exc)})")
