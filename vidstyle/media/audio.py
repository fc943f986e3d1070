"""The audio path: an input track the output container cannot take as it is, decoded,
resampled and encoded again on a gapless clock (a packet of the input that does not
decode becomes silence of its length, so the track keeps its duration and stays in sync),
and the checks that choose and open its encoder before any frame."""

from __future__ import annotations

import contextlib
from fractions import Fraction

import av

from vidstyle.media.encoders import open_refusal
from vidstyle.media.policy import AVI_FORMATS, encoder

# A gap in a transcoded track shorter than this is resampler rounding, not damage.
GAP_TOLERANCE_SECONDS = 0.002
# Silence is written for gaps up to this long; a longer jump is a broken timestamp, and
# filling it would write minutes of nothing.
MAX_GAP_SECONDS = 30.0


class AudioTranscoder:
    """Decodes one input track's packets and hands back the output encoder's packets.

    Two clocks: the input's (the next expected sample, at the input rate) and the
    output's (samples written), so that a gap between decoded frames becomes silence."""

    def __init__(self, source: av.stream.Stream, output: av.stream.Stream,
                 resampler: av.AudioResampler) -> None:
        self.source = source
        self.output = output
        self.resampler = resampler
        self.next_sample: int | None = None
        self.out_samples = 0
        self.out_start = 0
        self.end_seconds = 0.0  # where the input's packets of this track end
        self.last_frame: av.AudioFrame | None = None  # format of the silence that fills gaps
        self.silence_seconds = 0.0

    def transcode(self, packet: av.Packet) -> list[av.Packet]:
        """The output packets for one input packet (its timestamps on the output's
        clock). Raises av.FFmpegError or ValueError for a packet that does not decode."""
        if packet.pts is not None and packet.time_base:
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            self.end_seconds = max(self.end_seconds, end)
        out: list[av.Packet] = []
        for frame in self.source.codec_context.decode(packet):
            out += self._encode(frame)
        return out

    def flush(self) -> list[av.Packet]:
        """What the decoder and the encoder still hold, and silence up to where the
        track ended when its last packets were damaged."""
        out: list[av.Packet] = []
        with contextlib.suppress(av.error.FFmpegError, ValueError):
            for frame in self.source.codec_context.decode(None):
                out += self._encode(frame)
        last = self.last_frame
        if last is not None and self.next_sample is not None:
            missing = round(self.end_seconds * last.sample_rate) - self.next_sample
            if GAP_TOLERANCE_SECONDS * last.sample_rate < missing <= \
                    MAX_GAP_SECONDS * last.sample_rate:
                tail = silence_like(last, missing)
                tail.pts, tail.time_base = None, None
                out += self._encode_samples(tail)
                self.silence_seconds += missing / last.sample_rate
        out += self._encode(None)
        out += list(self.output.encode(None))
        return out

    def _encode(self, frame: av.AudioFrame | None) -> list[av.Packet]:
        """Resample and encode one decoded frame (None: flush) on the gapless clock."""
        out: list[av.Packet] = []
        if frame is not None:
            start = self._frame_start_sample(frame)
            if self.next_sample is None:
                self.next_sample = start
                self.out_start = round(start * self.output.codec_context.sample_rate
                                       / frame.sample_rate)
            gap = start - self.next_sample
            if GAP_TOLERANCE_SECONDS * frame.sample_rate < gap <= MAX_GAP_SECONDS * \
                    frame.sample_rate:
                out += self._encode(silence_like(frame, gap))
                self.silence_seconds += gap / frame.sample_rate
            self.next_sample += frame.samples
            self.last_frame = frame
            frame.pts = None  # the output clock below is the one that counts
        return out + self._encode_samples(frame)

    def _encode_samples(self, frame: av.AudioFrame | None) -> list[av.Packet]:
        out: list[av.Packet] = []
        for resampled in self.resampler.resample(frame):
            rate = self.output.codec_context.sample_rate
            resampled.pts = self.out_start + self.out_samples
            resampled.time_base = Fraction(1, rate)
            self.out_samples += resampled.samples
            out += self.output.encode(resampled)
        return out

    def _frame_start_sample(self, frame: av.AudioFrame) -> int:
        if frame.pts is None or frame.time_base is None:
            return self.next_sample or 0
        seconds = float(frame.pts * frame.time_base)
        return round(seconds * frame.sample_rate)


def silence_like(frame: av.AudioFrame, samples: int) -> av.AudioFrame:
    """`samples` of silence in `frame`'s format, layout and rate."""
    silent = av.AudioFrame(format=frame.format.name, layout=frame.layout.name,
                           samples=samples)
    for plane in silent.planes:
        plane.update(bytes(plane.buffer_size))
    silent.sample_rate = frame.sample_rate
    return silent


def audio_encoder(format_name: str, supported: set[str] | frozenset[str], wanted: str,
                  input_codec: str, default: str | None) -> av.Codec | None:
    """The audio encoder for a transcoded track: the one asked for, else the input's
    own, else the container's `default`. AVI: the input's own first (AC-3 stays AC-3)."""
    order = (wanted, input_codec) if format_name not in AVI_FORMATS else (
        input_codec, default)
    for name in (*order, default):
        codec = encoder(name) if name else None
        if codec is not None and codec.type == "audio" and codec.canonical_name in supported:
            return codec
    return None


def known_layout(layout: av.AudioLayout | None) -> av.AudioLayout:
    """A layout an encoder takes: Matroska PCM often says only "2 channels" (no order),
    which AAC refuses; FFmpeg's default order for that many channels ("2c" = stereo)."""
    channels = layout.nb_channels if layout is not None else 0
    if not channels:
        return av.AudioLayout("stereo")
    if layout.name.endswith("channels"):
        return av.AudioLayout(f"{channels}c")
    return layout


def audio_encoder_refusal(codec: av.Codec, rate: int, layout, bit_rate: int) -> str | None:
    """None if `codec` opens for this track, else why not (6 channels into a stereo-only
    encoder, a rate it lacks): found before any frame, not at the first audio packet."""
    ctx = av.CodecContext.create(codec.name, "w")
    ctx.sample_rate, ctx.layout, ctx.bit_rate = rate, layout, bit_rate
    ctx.format = codec.audio_formats[0].name if codec.audio_formats else "fltp"
    ctx.time_base = Fraction(1, rate)
    return open_refusal(ctx)


def encoder_rate(codec: av.Codec, rate: int) -> int:
    """The input's sample rate if the encoder takes it (Opus takes 48 kHz, not 44.1)."""
    rates = codec.audio_rates
    if not rates or rate in rates:
        return rate
    return 48000 if 48000 in rates else max(rates)
