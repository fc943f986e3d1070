"""Cut one video into segments at keyframes, and join stylized segments back together.

A long video is stylized in parallel by giving each worker one segment ``[t0, t1)``:

1. `scan_video` demuxes the video stream's packets (no decoding: a packet's keyframe flag
   and timestamp are in the container) to list every frame time and every keyframe.
2. `plan_segments` picks cut points among the keyframes, as close to even as they allow.
   Cutting at keyframes keeps each worker's seek cheap; which frames a segment holds is
   decided by timestamp, so every frame lands in exactly one segment whatever the GOP.
3. Each worker writes the video stream of its segment alone, timestamps rebased to zero
   (`vidstyle.segmented.stylize_segment`), after `warmup_frames` frames that prime the
   temporal filter. (The resumable job, `vidstyle.resume`, does the same one segment
   after another in one process.)
4. `join_segments` remuxes the segments' packets into one stream without re-encoding,
   shifting each segment back to its place on the original's clock, and muxes the
   original's audio, subtitles, chapters and metadata once over the whole, exactly as
   the single-process writer (`vidstyle.media.encode.VideoWriter`) would.

Pure PyAV: no Ray here, so planning and joining are tested on their own.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from vidstyle.config import OutputSettings, Settings
from vidstyle.errors import InputError, OutputError, SettingsError
from vidstyle.media.decode import TIMESTAMP_TOLERANCE
from vidstyle.media.encode import MuxReport, VideoWriter
from vidstyle.media.probe import MediaInfo, open_input

# A segment shorter than this is not worth a worker: model load and seek cost more than
# the frames it would stylize.
MIN_SEGMENT_FRAMES = 8
# Frames run through the engine before a segment's first frame to warm temporal state
# (flow/blend filter, Gatys warm start), at least. The filters are recursive: the state a
# segment starts from keeps a share s^n after n frames (s = temporal strength), so the
# warm-up lasts until that share is under WARMUP_RESIDUAL: 77 frames at the default 0.95
# (25 at 0.85). The soft confidence makes the real share smaller still: this is the bound.
WARMUP_FRAMES = 10
WARMUP_RESIDUAL = 0.02


@dataclass(frozen=True)
class VideoIndex:
    """Every frame timestamp of a video stream, and which frames are keyframes."""

    path: Path
    time_base: Fraction
    frame_pts: tuple[int, ...]  # sorted, display order
    keyframe_pts: tuple[int, ...]  # sorted

    def seconds(self, pts: int) -> float:
        return float(pts * self.time_base)

    def frames_in(self, start: float | None, end: float | None) -> list[int]:
        """Frame timestamps in ``[start, end)`` (seconds), with the decoder's tolerance."""
        lo = -math.inf if start is None else start - TIMESTAMP_TOLERANCE
        hi = math.inf if end is None else end - TIMESTAMP_TOLERANCE
        return [pts for pts in self.frame_pts if lo <= self.seconds(pts) < hi]


@dataclass(frozen=True)
class Segment:
    """One piece of the plan: frames with times in ``[start, end)``; `end` None = to the end."""

    index: int
    start: float  # seconds on the original's clock: a frame time (a keyframe after the first)
    end: float | None
    start_pts: int  # first frame's timestamp, in the original's video time base
    frames: int

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


def scan_video(path: str | Path) -> VideoIndex:
    """Demux the first video stream's packets (no decoding) and index frames and keyframes."""
    path = Path(path)
    with open_input(path) as container:
        if not container.streams.video:
            raise InputError(path, "has no video stream")
        stream = container.streams.video[0]
        frames: list[int] = []
        keyframes: list[int] = []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream flush packet
                if packet.pts is None:
                    raise InputError(
                        path, "video packets carry no timestamps; it cannot be cut into segments"
                    )
                frames.append(packet.pts)
                if packet.is_keyframe:
                    keyframes.append(packet.pts)
        except av.error.FFmpegError as exc:
            raise InputError(path, f"corrupt video data while indexing ({exc})") from None
        time_base = stream.time_base
    if not frames:
        raise InputError(path, "video stream holds no frames")
    return VideoIndex(path, time_base, tuple(sorted(frames)), tuple(sorted(keyframes)))


def plan_segments(
    index: VideoIndex,
    *,
    count: int | None = None,
    seconds: float | None = None,
    start: float | None = None,
    duration: float | None = None,
    min_frames: int = MIN_SEGMENT_FRAMES,
) -> list[Segment]:
    """Split the window ``[start, start + duration)`` (the whole video by default) into
    about `count` segments, or segments of about `seconds`, cut at keyframes.

    Fewer segments come back when the video has too few keyframes (a clip with one
    keyframe is one segment) or when a cut would leave fewer than `min_frames` frames.
    """
    if (count is None) == (seconds is None):
        raise SettingsError("give either a number of segments or a segment length")
    if count is not None and count < 1:
        raise SettingsError(f"segments must be at least 1, got {count}")
    if seconds is not None and seconds <= 0:
        raise SettingsError(f"segment length must be positive, got {seconds}")
    end = None if duration is None else (start or 0.0) + duration
    frames = index.frames_in(start, end)
    if not frames:
        raise InputError(index.path, "no video frames in the requested time window")
    first, last = index.seconds(frames[0]), index.seconds(frames[-1])
    span = last - first
    if count is None:
        count = max(1, round(span / seconds))
    targets = [first + span * i / count for i in range(1, count)]
    cuts = _nearest_keyframes(index, frames, targets, min_frames)
    bounds = [frames[0], *cuts]
    segments = []
    for i, pts in enumerate(bounds):
        seg_start = index.seconds(pts)
        seg_end = index.seconds(bounds[i + 1]) if i + 1 < len(bounds) else end
        segments.append(
            Segment(i, seg_start, seg_end, pts, len(index.frames_in(seg_start, seg_end)))
        )
    return segments


def _nearest_keyframes(
    index: VideoIndex, frames: list[int], targets: list[float], min_frames: int
) -> list[int]:
    """For each target time, the nearest keyframe that leaves every segment at least
    `min_frames` long; targets that find none are dropped."""
    position = {pts: i for i, pts in enumerate(frames)}
    candidates = [k for k in index.keyframe_pts if k in position]
    cuts: list[int] = []
    for target in targets:
        previous = position[cuts[-1]] if cuts else 0
        allowed = [
            k for k in candidates
            if position[k] - previous >= min_frames and len(frames) - position[k] >= min_frames
        ]
        if not allowed:
            continue
        best = min(allowed, key=lambda k: abs(index.seconds(k) - target))
        if best not in cuts:
            cuts.append(best)
    return sorted(cuts)


def warmup_frames(settings: Settings) -> int:
    """Frames a segment runs before its first one so that its temporal state is warm (see
    WARMUP_RESIDUAL), or 0 when the engine keeps no state from frame to frame."""
    frames = 0
    if settings.engine != "fast" and settings.gatys.warm_start != "none":
        frames = WARMUP_FRAMES
    if settings.temporal_mode != "off" and settings.temporal_strength > 0:
        strength = min(settings.temporal_strength, 0.999)
        frames = max(frames, WARMUP_FRAMES,
                     math.ceil(math.log(WARMUP_RESIDUAL) / math.log(strength)))
    return frames


def warmup_seconds(settings: Settings, info: MediaInfo, frames: int | None = None) -> float:
    """Seconds of warm-up before a segment: `frames` (default `warmup_frames`) at the
    video's rate."""
    frames = warmup_frames(settings) if frames is None else frames
    if frames == 0:
        return 0.0
    rate = float(info.frame_rate) if info.frame_rate else 25.0
    return frames / rate


# -- joining -------------------------------------------------------------------------------


def check_segments_match(paths: Sequence[Path]) -> None:
    """Raise OutputError unless every segment's video has the first one's codec
    parameters: same codec, size, pixel format, time base and extradata (H.264 avcC:
    SPS/PPS). One stream in an MP4 has one avcC, so segments that differ cannot be
    joined without re-encoding."""
    reference = None
    for i, path in enumerate(paths):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            ctx = stream.codec_context
            params = (ctx.name, ctx.width, ctx.height, ctx.pix_fmt, stream.time_base,
                      bytes(ctx.extradata or b""))
        if reference is None:
            reference = params
        elif params != reference:
            fields = ("codec", "width", "height", "pixel format", "time base", "extradata")
            differ = [f for f, a, b in zip(fields, params, reference, strict=True) if a != b]
            raise OutputError(
                path,
                f"segment {i} was encoded with different {', '.join(differ)} than segment 0;"
                " segments cannot be joined without re-encoding",
            )


def join_segments(
    segment_paths: Sequence[Path],
    segments: Sequence[Segment],
    info: MediaInfo,
    dst: Path,
    settings: OutputSettings,
    *,
    start: float | None = None,
    end: float | None = None,
) -> tuple[int, MuxReport]:
    """Write `dst`: the segments' video packets in order, back on the original's clock,
    plus the original's other streams (copied or transcoded as a single-process run
    would). Returns the number of video packets (frames) written, and what happened to
    the other streams.

    `start`/`end`: the job's time window (``--start``/``--duration``) when it was
    trimmed. As in the single-process writer, a trimmed output is rebased so its first
    frame is at zero and other streams keep the packets within the window; an untrimmed
    one keeps the original's timestamps.
    """
    if len(segment_paths) != len(segments) or not segments:
        raise ValueError("one segment file per planned segment is needed")
    check_segments_match(segment_paths)
    trimmed = start is not None or end is not None
    origin = segments[0].start_pts if trimmed else 0
    offset = float(origin * info.time_base)
    with open_input(info.path) as original, av.open(str(segment_paths[0])) as first:
        writer = VideoWriter(dst, info, original, settings,
                             video_template=first.streams.video[0])
        # Copied packets are shifted like the single-process writer's: by the time of
        # the window's first frame when the job was trimmed, by nothing otherwise.
        writer.offset_seconds = offset
        try:
            video = _shifted_video_packets(segment_paths, segments, info.time_base, origin)
            others = _other_packets(original, writer.copied_stream_indices, start, end)
            frames = 0
            # Interleave by decode time so the muxer never has to buffer a long run of
            # one stream (what the single-process pipeline does with its side queue).
            tagged_video = ((_decode_time(p) + offset, True, p) for p in video)
            tagged_others = ((_decode_time(p), False, p) for p in others)
            for _, is_video, packet in heapq.merge(
                tagged_video, tagged_others, key=lambda item: item[0]
            ):
                if is_video:
                    writer.write_video_packet(packet)
                    frames += 1
                else:
                    writer.write_packet(packet)
            writer.close()
        except BaseException:
            writer.abort()
            raise
    return frames, writer.report


def _decode_time(packet: av.Packet) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    return -math.inf if ts is None else float(ts * packet.time_base)


def _shifted_video_packets(
    paths: Sequence[Path], segments: Sequence[Segment], time_base: Fraction, origin: int
) -> Iterator[av.Packet]:
    """Every segment's video packets with pts/dts moved from the segment's own zero to
    its first frame's place on the output clock; decode timestamps kept increasing."""
    last_dts: int | None = None
    for path, segment in zip(paths, segments, strict=True):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # Exact in the original's time base; rounded once into the segment's.
            shift = round((segment.start_pts - origin) * time_base / stream.time_base)
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue
                packet.pts += shift
                packet.dts = packet.pts if packet.dts is None else packet.dts + shift
                if last_dts is not None and packet.dts <= last_dts:
                    # An encoder whose reorder delay changed between segments; nudge,
                    # which is legal while dts stays at or before pts.
                    if last_dts + 1 > packet.pts:
                        raise OutputError(path, "segment timestamps overlap the previous one")
                    packet.dts = last_dts + 1
                last_dts = packet.dts
                yield packet


def _other_packets(
    container: av.container.InputContainer,
    indices: frozenset[int],
    start: float | None,
    end: float | None,
) -> Iterator[av.Packet]:
    """Packets of the original's copied streams, in file order, within the window
    (the same rule as the single-process demuxer: packet time in ``[start, end)``)."""
    if not indices:
        return
    streams = [container.streams[i] for i in sorted(indices)]
    for packet in container.demux(streams):
        if packet.dts is None or packet.size == 0:
            continue
        if start is not None or end is not None:
            if packet.pts is None:
                continue
            time = float(packet.pts * packet.time_base)
            if (start is not None and time < start) or (end is not None and time >= end):
                continue
        yield packet
