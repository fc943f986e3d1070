"""Probing, decoding and muxing on real and generated clips."""

from __future__ import annotations

import shutil

import av
import numpy as np
import pytest
import torch
from avigen import make_ac3_avi, make_b_frame_clip
from helpers import make_clip

from vidstyle.errors import InputError
from vidstyle.media.decode import Demuxer, in_display_order
from vidstyle.media.probe import probe


def test_probe_real_clip_describes_streams(samples):
    info = probe(samples / "bigbuckbunny.mp4")
    assert (info.width, info.height) == (1280, 720)
    assert info.frames == 132
    assert abs(info.duration - 5.28) < 0.05
    assert [s.codec for s in info.audio_streams] == ["aac"]


def test_probe_reads_display_rotation(tmp_path):
    clip = make_clip(tmp_path / "phone.mp4", rotation=90)
    assert probe(clip).rotation == 90


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.mp4", b"", "empty"),
        ("notes.mp4", b"this is a text file, not a video\n" * 20, "not a video"),
    ],
)
def test_probe_rejects_non_videos(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=reason) as err:
        probe(path)
    assert str(path) in str(err.value)


def test_probe_rejects_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        probe(tmp_path / "missing.mp4")


def test_probe_rejects_audio_only(tmp_path):
    container = av.open(str(tmp_path / "tone.m4a"), "w")
    stream = container.add_stream("aac", rate=44100)
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                       layout="mono")
    frame.sample_rate, frame.pts = 44100, 0
    container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    with pytest.raises(InputError, match="no video stream"):
        probe(tmp_path / "tone.m4a")


def test_probe_rejects_still_image(tmp_path, samples):
    photo = tmp_path / "photo.jpg"
    shutil.copy(samples / "photos" / "fruits.jpg", photo)
    with pytest.raises(InputError, match="still image"):
        probe(photo)


def test_truncated_video_hands_out_what_decodes_and_says_where_it_ended(tmp_path, samples):
    data = (samples / "cup.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])  # index intact, media data cut short
    info = probe(cut)
    with Demuxer(info) as demuxer:
        frames = [f for f in demuxer.items() if hasattr(f, "image")]
    assert 10 < len(frames) < info.frames
    at, of = demuxer.ended_early
    assert at == pytest.approx(frames[-1].time + 1 / float(info.frame_rate), abs=0.01)
    assert of == pytest.approx(info.duration, abs=0.05)


def test_decoded_timestamps_are_repaired_to_display_order(samples):
    # box.mp4 (VLC-muxed) stores pts == dts, so the decoder pairs display-order frames
    # with decode-order stamps; the demuxer must hand out increasing timestamps.
    info = probe(samples / "box.mp4")
    with Demuxer(info) as demuxer:
        times = [f.time for f in demuxer.items() if hasattr(f, "image")]
    assert len(times) == 455
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert abs(times[1] - times[0] - 0.034) < 0.002


def test_in_display_order_keeps_sorted_stamps_untouched():
    class Frame:
        def __init__(self, pts):
            self.pts, self.duration = pts, 1

    frames = [Frame(p) for p in (0, 3, 7, 8, 20)]
    assert [f.pts for f in in_display_order(iter(frames), 4)] == [0, 3, 7, 8, 20]
    shuffled = [Frame(p) for p in (0, 2, 1, 4, 3, 4)]
    assert [f.pts for f in in_display_order(iter(shuffled), 4)] == [0, 1, 2, 3, 4, 5]


def test_segment_window_selects_frames_by_time(samples):
    info = probe(samples / "bigbuckbunny.mp4")
    with Demuxer(info, start=2.0, duration=1.0) as demuxer:
        frames = [f for f in demuxer.items() if hasattr(f, "image")]
    assert len(frames) == 25  # 1 s at 25 fps
    assert abs(frames[0].time - 2.0) < 0.02


# -- issue 13: judged by decoding, only regular files, options proven up front ----------


def make_sparse_mjpeg_avi(path, frames: int = 24, step: int = 50):
    """A valid MJPEG AVI whose index lists far more entries than it has frames: AVI
    times a frame by its chunk, and a dropped frame is an empty chunk (what capture
    software writes when it repeats a frame)."""
    container = av.open(str(path), "w")
    video = container.add_stream("mjpeg", rate=25)
    video.width, video.height, video.pix_fmt = 32, 24, "yuvj420p"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), i * 10 % 255, np.uint8),
                                           format="rgb24").reformat(format="yuvj420p")
        frame.pts = i * step
        for packet in video.encode(frame):
            container.mux(packet)
    for packet in video.encode(None):
        container.mux(packet)
    container.close()
    return path


def test_avi_whose_index_lists_more_entries_than_frames_is_read_whole(tmp_path):
    # Once refused as "only 24 of 1200 frames decode": header counts are not the file.
    info = probe(make_sparse_mjpeg_avi(tmp_path / "sparse.avi"))
    assert info.frames > 1000
    with Demuxer(info) as demuxer:
        times = [f.time for f in demuxer.items() if hasattr(f, "image")]
    assert len(times) == 24
    assert times == pytest.approx([i * 2.0 for i in range(24)])
    assert demuxer.ended_early is None and demuxer.damaged_packets == 0


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_only_regular_files_are_opened(tmp_path, kind):
    import os

    path = tmp_path / "clip.mp4"
    if kind == "fifo":
        os.mkfifo(path)  # opening it would block forever with no writer
    else:
        path.symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(InputError, match="not a file") as err:
        probe(path)
    assert str(path) in str(err.value)


def test_unknown_preset_is_refused_when_the_writer_is_set_up(tmp_path):
    from vidstyle.config import OutputSettings
    from vidstyle.errors import SettingsError
    from vidstyle.media.encode import VideoWriter

    src = make_clip(tmp_path / "a.mp4", frames=2)
    info = probe(src)
    with Demuxer(info) as demuxer, pytest.raises(SettingsError, match="fastest") as err:
        VideoWriter(tmp_path / "o.mp4", info, demuxer.container,
                    OutputSettings(preset="fastest"))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("suffix", "codec"), [(".webm", "libvpx-vp9"), (".avi", "mpeg4"),
                                               (".mkv", "libx264"), (".mov", "libx264")])
def test_auto_codec_is_what_the_container_holds_well(tmp_path, suffix, codec):
    from vidstyle.config import OutputSettings
    from vidstyle.media.encode import VideoWriter

    src = make_clip(tmp_path / "a.mp4", frames=2)
    info = probe(src)
    with Demuxer(info) as demuxer:
        writer = VideoWriter(tmp_path / f"o{suffix}", info, demuxer.container,
                             OutputSettings(preset="ultrafast"))
        writer.abort()
    assert writer.video.codec_context.name == codec


# -- issue 40: what a batch can trust ---------------------------------------------------

class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def stylize_identity(src, dst):
    """The user's default settings (flicker filter, codec auto...), an identity network."""
    from vidstyle import Settings
    from vidstyle.api import stylize_video

    return stylize_video(src, dst, Settings(style="identity"), network=Identity())


def first_frame_time(path) -> tuple[float, float]:
    """The first decoded frame's time in display order, and the stream's tick."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = sorted(f.time for f in container.decode(stream) if f.time is not None)
        return times[0], float(stream.time_base)


@pytest.mark.parametrize(("suffix", "codec", "options"), [
    (".avi", "mpeg4", {"bf": "2"}),  # the reported file's kind: MPEG-4 with B-frames
    (".mp4", "libx264", {"bf": "3"}),
    (".mov", "libx264", {"bf": "3"}),
    (".mkv", "libx264", {"bf": "3"}),
    (".webm", "libvpx-vp9", {}),
])
def test_first_frame_keeps_its_time_in_every_container(tmp_path, suffix, codec, options):
    src = make_b_frame_clip(tmp_path / f"in{suffix}", codec, **options)
    result = stylize_identity(src, tmp_path / f"out{suffix}")
    given, tick = first_frame_time(src)
    written, out_tick = first_frame_time(result.dst)
    # Less than a tick: the reported shift was exactly one (0.0417 s at 24 fps).
    assert abs(written - given) < max(tick, out_tick) / 2, (given, written)
    if suffix == ".avi":
        assert given == pytest.approx(1 / 24)  # the case that moved to 0.0


def test_damaged_video_packet_is_a_warning_not_a_loss(tmp_path):
    clean = make_clip(tmp_path / "clean.mp4", frames=30)
    src = tmp_path / "damaged.mp4"
    with av.open(str(clean)) as given, av.open(str(src), "w") as out:
        video = out.add_stream_from_template(given.streams.video[0])
        for n, packet in enumerate(p for p in given.demux(video=0) if p.size):
            if n == 12 and not packet.is_keyframe:  # a P-frame the decoder refuses
                broken = av.Packet(bytes([0xFF]) * packet.size)
                broken.pts, broken.dts = packet.pts, packet.dts
                broken.time_base = packet.time_base
                packet = broken
            packet.stream = video
            out.mux(packet)
    result = stylize_identity(src, tmp_path / "out.mp4")
    assert result.frames > 0
    assert any("damaged video packet" in w for w in result.warnings), result.warnings
    assert len(result.warnings) == len(set(result.warnings))
    assert not result.data_lost  # the input's own damage: exit 0, not 3


def test_damaged_audio_packet_becomes_silence_and_a_warning_not_a_loss(tmp_path):
    from vidstyle.config import OutputSettings
    from vidstyle.media.encode import VideoWriter

    src = make_ac3_avi(tmp_path / "clip.avi", seconds=2.0, damaged_packet=20)
    info = probe(src)
    with Demuxer(info, other_streams=True) as demuxer:
        writer = VideoWriter(tmp_path / "out.avi", info, demuxer.container,
                             OutputSettings(preset="ultrafast"))
        for item in demuxer.items():
            if isinstance(item, av.Packet):
                writer.write_packet(item)
            else:
                writer.write_frame(item, item.image)
        writer.close()
    report = writer.report
    assert report.skipped_packets == 1 and report.silence_seconds > 0.02
    assert report.warnings == ["stream #1: skipped a damaged audio packet of the input that "
                               "does not decode (" + report.warnings[0].split(" (", 1)[1]]
    assert not report.data_lost
    assert [f.fate for f in report.streams] == ["stylized", "transcoded"]
