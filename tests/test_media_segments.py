"""Segment planning and joining on real clips, without Ray: a video cut at keyframes,
stylized segment by segment and joined, must equal the single-process output in every
frame timestamp, in duration, and in its (bit-identical) audio."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
from helpers import InvertNetwork, audio_packets, video_timestamps

from vidstyle.api import Stylizer
from vidstyle.config import Settings
from vidstyle.errors import InputError, OutputError, SettingsError
from vidstyle.files import atomic_output
from vidstyle.media.probe import probe
from vidstyle.media.segments import (
    WARMUP_FRAMES,
    WARMUP_RESIDUAL,
    join_segments,
    plan_segments,
    scan_video,
    warmup_frames,
    warmup_seconds,
)
from vidstyle.segmented import stylize_segment

# cup.mp4: 217 frames at 26.777 fps, a keyframe every 30 frames (1.12 s), AAC audio.
CUP_FRAMES = 217
CUP_KEYFRAMES = 8


def fast_settings(**changes) -> Settings:
    return Settings(device="cpu", max_size=64, **changes).replace(
        output={"preset": "ultrafast"}
    )


def stylize_in_segments(src: Path, dst: Path, settings: Settings, count: int,
                        tmp_path: Path, segment_output=None) -> int:
    """What the Ray executor does, in one process: plan, stylize each segment, join."""
    info = probe(src)
    segments = plan_segments(
        scan_video(src), count=count, start=settings.start, duration=settings.duration
    )
    paths = []
    for segment in segments:
        path = tmp_path / f"seg{segment.index}{dst.suffix}"
        own = settings
        if segment_output is not None:
            own = settings.replace(output=segment_output(segment.index))
        with Stylizer(own, network=InvertNetwork()) as stylizer:
            stylize_segment(stylizer, own, src, info, segment, path,
                            warmup=warmup_seconds(settings, info))
        paths.append(path)
    end = None if settings.duration is None else (settings.start or 0.0) + settings.duration
    with atomic_output(dst, overwrite=False) as tmp:
        frames, _ = join_segments(
            paths, segments, info, tmp, settings.output, start=settings.start, end=end
        )
    return frames


def stream_durations(path: Path) -> dict[str, float]:
    with av.open(str(path)) as container:
        return {s.type: float(s.duration * s.time_base) for s in container.streams}


# -- scanning and planning -------------------------------------------------------------------


def test_scan_finds_every_frame_and_keyframe_without_decoding(samples):
    index = scan_video(samples / "cup.mp4")
    assert len(index.frame_pts) == CUP_FRAMES
    assert len(index.keyframe_pts) == CUP_KEYFRAMES
    assert list(index.frame_pts) == sorted(set(index.frame_pts))
    assert index.frame_pts[0] == index.keyframe_pts[0] == 0


def test_plan_cuts_at_keyframes_and_partitions_every_frame(samples):
    index = scan_video(samples / "cup.mp4")
    segments = plan_segments(index, count=4)
    assert len(segments) == 4
    assert sum(s.frames for s in segments) == CUP_FRAMES
    assert all(s.start_pts in index.keyframe_pts for s in segments)
    for before, after in zip(segments, segments[1:], strict=False):
        assert before.end == after.start  # contiguous: no frame twice, none lost
    assert segments[-1].end is None


def test_plan_by_length_and_within_a_trim_window(samples):
    index = scan_video(samples / "cup.mp4")
    by_length = plan_segments(index, seconds=2.2)
    assert len(by_length) == 4
    trimmed = plan_segments(index, count=3, start=1.0, duration=3.5)
    assert trimmed[0].start == pytest.approx(1.0, abs=0.04)  # the first frame at 1.0 s
    assert trimmed[-1].end == pytest.approx(4.5)
    assert sum(s.frames for s in trimmed) == len(index.frames_in(1.0, 4.5))


def test_plan_returns_fewer_segments_when_keyframes_are_scarce(samples):
    # bigbuckbunny.mp4 has a single keyframe: it cannot be cut without re-encoding.
    segments = plan_segments(scan_video(samples / "bigbuckbunny.mp4"), count=4)
    assert len(segments) == 1
    assert segments[0].frames == probe(samples / "bigbuckbunny.mp4").frames


def test_plan_rejects_bad_requests(samples, tmp_path):
    index = scan_video(samples / "cup.mp4")
    with pytest.raises(SettingsError):
        plan_segments(index)
    with pytest.raises(SettingsError):
        plan_segments(index, count=0)
    with pytest.raises(InputError, match="no video frames"):
        plan_segments(index, count=2, start=100.0)
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(InputError, match="notes.mp4"):
        scan_video(bad)


def test_warmup_only_for_engines_with_temporal_state(samples):
    info = probe(samples / "cup.mp4")
    assert warmup_seconds(Settings(temporal="off"), info) == 0.0
    flow = Settings(temporal="flow", temporal_strength=0.85)
    assert warmup_seconds(flow, info) == pytest.approx(25 / 26.777)
    assert warmup_seconds(Settings(), info) > 0  # the default engine keeps temporal state


@pytest.mark.parametrize("strength", [0.3, 0.6, 0.85, 0.95])
def test_warmup_lasts_until_the_cold_start_has_faded(strength):
    """The recursive filter keeps strength^n of a cold start after n frames: the warm-up
    is the first n under WARMUP_RESIDUAL (at least WARMUP_FRAMES)."""
    frames = warmup_frames(Settings(temporal="blend", temporal_strength=strength))
    assert strength ** frames < WARMUP_RESIDUAL <= strength ** (frames - 1) or (
        frames == WARMUP_FRAMES and strength ** WARMUP_FRAMES < WARMUP_RESIDUAL)
    assert warmup_frames(Settings(temporal="off")) == 0
    assert warmup_frames(Settings(temporal="off", engine="gatys")) == WARMUP_FRAMES


# -- joining -------------------------------------------------------------------------------


@pytest.mark.slow
def test_joined_segments_keep_every_frame_timestamp_and_the_audio(samples, tmp_path):
    src = samples / "cup.mp4"
    dst = tmp_path / "cup.joined.mp4"
    frames = stylize_in_segments(src, dst, fast_settings(temporal="blend"), 4, tmp_path)
    assert frames == CUP_FRAMES
    assert len(decoded := video_timestamps(dst)) == CUP_FRAMES
    assert decoded == video_timestamps(src)
    assert audio_packets(dst) == audio_packets(src)
    durations, original = stream_durations(dst), stream_durations(src)
    assert durations["video"] == pytest.approx(original["video"])
    # Stream copy keeps every AAC packet but not the input's edit list, which trims the
    # last frame's padding: the single-process writer does the same (1024 samples max).
    assert durations["audio"] == pytest.approx(original["audio"], abs=1024 / 48000)
    assert not list(tmp_path.glob(".*"))  # no temp file left behind


def test_trimmed_join_matches_the_single_process_output(samples, tmp_path):
    """A trimmed job (start, duration) joined from segments: rebased to zero, with the
    same frames, timestamps and audio packets as one process writes."""
    src = samples / "cup.mp4"
    settings = fast_settings(start=1.5, duration=2.5)
    joined = tmp_path / "joined.mp4"
    frames = stylize_in_segments(src, joined, settings, 3, tmp_path)
    single = Stylizer(settings, network=InvertNetwork()).video(src, tmp_path / "single.mp4")
    assert frames == single.frames == len(scan_video(src).frames_in(1.5, 4.0))
    assert video_timestamps(joined) == video_timestamps(single.dst)
    assert video_timestamps(joined)[0] == 0.0
    assert audio_packets(joined) == audio_packets(single.dst)
    assert stream_durations(joined) == pytest.approx(stream_durations(single.dst))


def test_segments_with_different_codec_parameters_are_refused(samples, tmp_path):
    """One MP4 stream holds one avcC (SPS/PPS): segments encoded differently must not be
    spliced into a file that decodes wrongly."""
    settings = fast_settings(start=1.5, duration=1.5)

    def other_profile_for_second(index: int) -> dict:
        return {"preset": "ultrafast", "pix_fmt": "yuv444p" if index == 1 else None}

    with pytest.raises(OutputError, match="segment 1 .*extradata"):
        stylize_in_segments(samples / "cup.mp4", tmp_path / "out.mp4", settings, 2,
                            tmp_path, segment_output=other_profile_for_second)
    assert not (tmp_path / "out.mp4").exists()
