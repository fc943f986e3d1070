"""Demux an input: decoded video frames (RGB, with timestamps) and untouched packets of
the streams we copy (audio, subtitles), in file order."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidstyle.errors import InputError
from vidstyle.media.color import HdrFormat, decode_hdr_frame, hdr_format
from vidstyle.media.probe import MediaInfo, open_input

# Colour range / matrix values that mean "not stated in the file".
_UNSPECIFIED = 0
_UNSPECIFIED_MATRIX = 2


@dataclass
class DecodedFrame:
    """One video frame as RGB pixels, with what is needed to re-encode it in place."""

    image: np.ndarray  # H x W x 3 uint8, RGB
    pts: int | None
    time_base: Fraction
    duration: int | None
    index: int  # position in the output, 0-based
    # Decoded before the window starts only to prime temporal state: stylized, not written.
    warmup: bool = False

    @property
    def time(self) -> float | None:
        return None if self.pts is None else float(self.pts * self.time_base)


def frame_to_rgb(frame: av.VideoFrame, hdr: HdrFormat | None = None) -> np.ndarray:
    """YUV -> RGB with the matrix and range the file declares (full-range stays full).

    HLG and PQ frames come out tone-mapped to SDR BT.709 (vidstyle.media.color), as the
    networks were trained on such pictures; `hdr` is the stream's format (from `probe`,
    with its mastering display), else the frame's own tags say it."""
    hdr = hdr or hdr_format(frame.color_trc, frame.color_primaries, frame.colorspace,
                            frame.side_data)
    if hdr is not None:
        return decode_hdr_frame(frame, hdr)
    colorspace = frame.colorspace if frame.colorspace != _UNSPECIFIED_MATRIX else None
    color_range = frame.color_range if frame.color_range != _UNSPECIFIED else None
    return frame.to_ndarray(
        format="rgb24", src_colorspace=colorspace, src_color_range=color_range
    )


# Frames held back to put timestamps in order when a stream has B-frames. Some muxers
# (seen: VLC-written MP4 in OpenCV's samples) store pts == dts, so the decoder hands out
# display-order frames carrying decode-order timestamps; the right timestamps are the same
# values sorted within the reorder depth. H.264 streams seldom reorder deeper than 4.
REORDER_WINDOW = 8
TRUNCATION_TOLERANCE_FRAMES = 2
TIMESTAMP_TOLERANCE = 1e-4  # seconds


def in_display_order(frames: Iterable[av.VideoFrame], window: int) -> Iterator[av.VideoFrame]:
    """Yield frames (already in display order) with their timestamps sorted and strictly
    increasing. A no-op for well-formed streams, whose timestamps are already sorted."""
    pending: deque[av.VideoFrame] = deque()
    stamps: list[tuple[int, int]] = []
    last = None

    def release() -> av.VideoFrame:
        nonlocal last
        frame = pending.popleft()
        pts, duration = heapq.heappop(stamps)
        if last is not None and pts <= last:
            pts = last + 1  # duplicated stamps: encoders and muxers need strict order
        frame.pts, frame.duration, last = pts, duration, pts
        return frame

    for frame in frames:
        if frame.pts is None:
            yield frame
            continue
        pending.append(frame)
        heapq.heappush(stamps, (frame.pts, frame.duration or 0))
        if len(pending) > window:
            yield release()
    while pending:
        yield release()


class Demuxer:
    """Iterate a file's video frames and copied packets, within an optional time window.

    `start`/`duration` (seconds) select a segment; `rebase` then shifts every timestamp so
    the segment starts at zero, keeping audio and video in sync.
    """

    def __init__(
        self,
        info: MediaInfo,
        start: float | None = None,
        duration: float | None = None,
        warmup: float = 0.0,
        *,
        other_streams: bool = False,
    ) -> None:
        """`other_streams`: also yield the packets of every non-video stream (the writer
        keeps those it carries), or only the video frames."""
        self.info = info
        self.other_streams = other_streams
        self.start = start
        self.end = None if duration is None else (start or 0.0) + duration
        # Frames in [start - warmup, start) are decoded and flagged `warmup`.
        self.decode_from = None if start is None else max(start - warmup, 0.0)
        self.container = open_input(info.path)
        self.video = self.container.streams.video[0]
        # Let FFmpeg decode with its own threads: frame threading keeps a 2-core CPU busy
        # while our Python thread converts to RGB.
        self.video.thread_type = "AUTO"
        # AVI stores no presentation times: a frame's time is its chunk's tick (the
        # packet dts; an empty chunk is a dropped frame). FFmpeg's guess for H.264 adds
        # its reorder delay (measured: 1-2 ticks late), so the ticks are taken and put in
        # display order by `in_display_order`.
        self.stamps_from_dts = info.format_name == "avi"
        # (last frame's end, stated end) in seconds when the video stopped early.
        self.ended_early: tuple[float, float] | None = None
        self.damaged_packets = 0
        self.read_error: str | None = None

    def __enter__(self) -> Demuxer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    @property
    def path(self) -> Path:
        return self.info.path

    def input_stream(self, index: int) -> av.stream.Stream:
        return self.container.streams[index]

    def items(self) -> Iterator[DecodedFrame | av.Packet]:
        """Frames of the video stream and packets of the other streams, in demux order.

        One policy for damage, whatever the container: every frame that decodes is
        handed out, a packet that does not decode is skipped, and a file that ends before
        the time its header states sets `ended_early` (judged by the decoded timestamps,
        never by index counts: an AVI index may list empty "repeat" chunks).
        """
        if self.decode_from:
            self._seek(self.decode_from)
        window = REORDER_WINDOW if self.video.codec_context.has_b_frames else 0
        if self.stamps_from_dts:
            window = REORDER_WINDOW
        index = 0
        last_end: float | None = None
        for item in in_display_order_mixed(self._demux(), window):
            if isinstance(item, av.Packet):
                yield item
                continue
            decoded = self._keep(item, index)
            if decoded is _PAST_END:
                break
            if decoded is not None:
                index += 0 if decoded.warmup else 1
                if decoded.time is not None:
                    last_end = decoded.time + self._frame_seconds(decoded)
                yield decoded
        self._check_complete(index, last_end)

    def _frame_seconds(self, frame: DecodedFrame) -> float:
        if frame.duration:
            return float(frame.duration * frame.time_base)
        rate = self.info.frame_rate
        return 1 / float(rate) if rate else 0.0

    def _check_complete(self, decoded: int, last_end: float | None) -> None:
        """Note when the video stops before the end the file states (a cut-off download,
        a camera that lost power). No frame at all is an error."""
        if decoded == 0:
            where = "" if self.start is None else f" at or after {self.start:g} s"
            raise InputError(self.path, f"no video frame decodes{where} (truncated or corrupt)")
        expected = self.expected_end()
        if expected is None or last_end is None:
            return
        rate = float(self.info.frame_rate) if self.info.frame_rate else 25.0
        if last_end < expected - TRUNCATION_TOLERANCE_FRAMES / rate:
            self.ended_early = (last_end, expected)

    def expected_end(self) -> float | None:
        """Where the video should end (s): the window's end, or the stream's stated end."""
        stated = None
        if self.info.duration is not None:
            stated = self.info.start_time + self.info.duration
        if self.end is not None:
            return self.end if stated is None else min(self.end, stated)
        return stated

    def _demux(self) -> Iterator[av.VideoFrame | av.Packet]:
        """Decoded video frames and the other streams' packets, in file order.

        A video packet that does not decode is counted and skipped; a read error ends the
        file there (what follows it cannot be found again).
        """
        streams = [self.video]
        if self.other_streams:
            streams += [s for s in self.container.streams
                        if s.index != self.video.index and s.type != "attachment"]
        try:
            for packet in self.container.demux(streams):
                if packet.stream.index != self.video.index:
                    if packet.dts is not None and self._packet_in_window(packet):
                        yield packet
                    continue
                yield from self._decode(packet)
        except (av.error.FFmpegError, OSError) as exc:
            self.read_error = str(exc)
            yield from self._decode(None)  # frames the decoder still holds

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        try:
            frames = packet.decode() if packet is not None else self.video.decode(None)
        except (av.error.FFmpegError, ValueError):
            self.damaged_packets += 1
            return []
        if self.stamps_from_dts:
            for frame in frames:
                if frame.dts is not None:
                    frame.pts = frame.dts
        return frames

    def _seek(self, seconds: float) -> None:
        target = int(seconds / self.video.time_base)
        self.container.seek(target, stream=self.video, backward=True, any_frame=False)

    def _keep(self, frame: av.VideoFrame, index: int) -> DecodedFrame | None | object:
        time = frame.time
        if time is not None:
            # The window is [start, end); stamps are rounded to the stream's time base.
            if self.decode_from is not None and time < self.decode_from - TIMESTAMP_TOLERANCE:
                return None
            if self.end is not None and time >= self.end - TIMESTAMP_TOLERANCE:
                return _PAST_END
        warmup = (
            time is not None and self.start is not None
            and time < self.start - TIMESTAMP_TOLERANCE
        )
        return DecodedFrame(
            image=frame_to_rgb(frame, self.info.hdr),
            pts=frame.pts,
            time_base=frame.time_base or self.video.time_base,
            duration=frame.duration or None,
            index=-1 if warmup else index,
            warmup=warmup,
        )

    def _packet_in_window(self, packet: av.Packet) -> bool:
        if self.start is None and self.end is None:
            return True
        if packet.pts is None:
            return False
        time = float(packet.pts * packet.time_base)
        if self.start is not None and time < self.start:
            return False
        return self.end is None or time < self.end


_PAST_END = object()


def in_display_order_mixed(
    items: Iterable[av.VideoFrame | av.Packet], window: int
) -> Iterator[av.VideoFrame | av.Packet]:
    """`in_display_order` for the video frames of a mixed stream; packets pass straight
    through (they are muxed by their own timestamps, so a small lead does not matter)."""
    if window <= 0:
        yield from items
        return
    side: deque[av.Packet] = deque()

    def frames_only() -> Iterator[av.VideoFrame]:
        for item in items:
            if isinstance(item, av.Packet):
                side.append(item)
            else:
                yield item

    for frame in in_display_order(frames_only(), window):
        while side:
            yield side.popleft()
        yield frame
    while side:
        yield side.popleft()
