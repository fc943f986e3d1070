"""stylize_video end to end: geometry, timing, colour, audio, atomic output, bad input."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers import audio_packets, decoded_frames, make_clip, user_defaults, video_timestamps

from vidstyle import Settings, Stylizer, stylize_video
from vidstyle.config import TEMPORAL_MODES
from vidstyle.errors import Cancelled, InputError, OutputError, SettingsError

# The network is an exact oracle (inversion): no temporal filter, or frames would blend.
FAST = {"output": {"preset": "ultrafast"}, "temporal": "off"}


def run(src, dst, network, **overrides):
    settings = Settings(style="invert", batch=3).replace(**FAST).replace(**overrides)
    return stylize_video(src, dst, settings, network=network)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "vidstyle-tmp" in p.name)


# -- real clips ---------------------------------------------------------------------------


def test_real_clip_keeps_frames_timing_size_and_audio(tmp_path, samples, invert):
    src = samples / "cup.mp4"  # AAC, audio stream first, odd 26.777 fps
    result = run(src, tmp_path / "cup.out.mp4", invert)
    out = result.dst
    assert result.frames == 217
    assert video_timestamps(out) == pytest.approx(video_timestamps(src), abs=1e-6)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert [s.type for s in a.streams] == [s.type for s in b.streams]
        va, vb = a.streams.video[0], b.streams.video[0]
        assert (vb.width, vb.height) == (va.width, va.height)
        assert abs(a.duration - b.duration) / 1e6 < 0.05
    assert audio_packets(out) == audio_packets(src)  # stream copy: bit-identical


def test_real_clip_pixels_are_the_networks_output(tmp_path, samples, invert):
    src = samples / "bigbuckbunny.mp4"
    result = run(src, tmp_path / "bbb.mp4", invert, duration=1.0)
    original = [f.to_ndarray(format="rgb24") for f in decoded_frames(src)[:25]]
    styled = [f.to_ndarray(format="rgb24") for f in decoded_frames(result.dst)]
    assert len(styled) == 25
    for a, b in zip(original, styled, strict=True):
        assert mean_abs_diff(255 - a, b) < 4.0  # codec noise only


def test_mp3_audio_is_copied_untouched(tmp_path, samples, invert):
    src = samples / "box.mp4"
    result = run(src, tmp_path / "box.mp4", invert, duration=2.0)
    packets_out = audio_packets(result.dst)
    packets_in = audio_packets(src)
    assert len(packets_out) > 50
    assert packets_out == packets_in[: len(packets_out)]


def test_segment_keeps_that_segments_audio(tmp_path, samples, invert):
    result = run(samples / "bigbuckbunny.mp4", tmp_path / "seg.mp4", invert,
                 start=2.0, duration=1.5)
    with av.open(str(result.dst)) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        video_seconds = float(video.duration * video.time_base)
        audio_seconds = float(audio.duration * audio.time_base)
    assert result.frames == 38  # 1.5 s at 25 fps, rounded up at the window edge
    assert video_timestamps(result.dst)[0] == pytest.approx(0.0, abs=1e-3)
    assert abs(audio_seconds - video_seconds) < 0.1
    assert abs(audio_seconds - 1.5) < 0.1


# -- generated edge cases -----------------------------------------------------------------


@pytest.mark.parametrize("size", [(66, 38), (641, 337), (30, 18)])
def test_odd_sizes_come_out_exactly_the_input_size(tmp_path, invert, size):
    # Odd sides exist only without chroma subsampling (4:4:4).
    pix_fmt = "yuv444p" if any(side % 2 for side in size) else "yuv420p"
    src = make_clip(tmp_path / "odd.mp4", size=size, frames=4, pix_fmt=pix_fmt)
    out = run(src, tmp_path / "odd.out.mp4", invert).dst
    frames_in = [f.to_ndarray(format="rgb24") for f in decoded_frames(src)]
    frames_out = [f.to_ndarray(format="rgb24") for f in decoded_frames(out)]
    assert frames_out[0].shape == frames_in[0].shape == (size[1], size[0], 3)
    assert mean_abs_diff(255 - frames_in[-1], frames_out[-1]) < 6.0


def test_max_size_runs_small_and_comes_back_full_size(tmp_path, samples):
    seen: list[tuple[int, int]] = []

    class Recording(torch.nn.Module):
        size_multiple = 4

        def forward(self, x):
            seen.append(tuple(x.shape[-2:]))
            return 1.0 - x

    out = run(samples / "bigbuckbunny.mp4", tmp_path / "small.mp4", Recording(),
              max_size=160, duration=0.2).dst
    frame = decoded_frames(out)[0]
    assert (frame.width, frame.height) == (1280, 720)
    assert seen and set(seen) == {(92, 160)}  # 1280x720 -> 160x90, padded to 160x92


def test_variable_frame_rate_timestamps_survive(tmp_path, invert):
    stamps = [0, 40, 80, 200, 240, 400, 410, 420, 700]
    src = make_clip(tmp_path / "vfr.mp4", pts_ms=stamps)
    out = run(src, tmp_path / "vfr.out.mp4", invert).dst
    assert video_timestamps(out) == pytest.approx([s / 1000 for s in stamps], abs=1e-3)


def test_rotation_metadata_is_kept(tmp_path, invert):
    src = make_clip(tmp_path / "phone.mp4", rotation=90)
    out = run(src, tmp_path / "phone.out.mp4", invert).dst
    assert decoded_frames(out)[0].rotation == 90


def test_full_range_input_stays_full_range(tmp_path, invert):
    src = make_clip(tmp_path / "full.mp4", pix_fmt="yuvj420p", color_range=2)
    out = run(src, tmp_path / "full.out.mp4", invert).dst
    frame_in, frame_out = decoded_frames(src)[3], decoded_frames(out)[3]
    assert frame_out.color_range == 2
    rgb_in = frame_in.to_ndarray(format="rgb24")
    rgb_out = frame_out.to_ndarray(format="rgb24", src_color_range=2)
    # A range mix-up squeezes 0..255 into 16..235: errors of ~15 levels at the extremes.
    assert mean_abs_diff(255 - rgb_in, rgb_out) < 4.0
    assert rgb_out.max() > 245 and rgb_out.min() < 10


def test_every_audio_track_is_copied(tmp_path, invert):
    src = make_clip(tmp_path / "multi.mp4", audio_tracks=3)
    out = run(src, tmp_path / "multi.out.mp4", invert).dst
    with av.open(str(out)) as c:
        assert [s.metadata.get("language") for s in c.streams.audio] == ["eng", "fra", "deu"]
    for track in range(3):
        assert audio_packets(out, track) == audio_packets(src, track)


def test_audio_the_container_refuses_is_transcoded(tmp_path, invert):
    src = make_clip(tmp_path / "aac.mp4", audio_tracks=1, frames=25)
    settings = {"codec": "libvpx-vp9", "crf": 40, "preset": "ultrafast"}
    result = run(src, tmp_path / "out.webm", invert, output=settings)
    with av.open(str(result.dst)) as c:
        audio = c.streams.audio[0]
        assert audio.codec_context.name == "opus"
        seconds = float(audio.duration * audio.time_base) if audio.duration else c.duration / 1e6
    assert result.transcoded_streams == [1]
    assert abs(seconds - 1.0) < 0.1


def test_no_audio_clip_works(tmp_path, invert):
    src = make_clip(tmp_path / "silent.mp4")
    result = run(src, tmp_path / "silent.out.mp4", invert)
    assert result.frames == 12 and result.copied_streams == []


# -- atomic output and bad input ----------------------------------------------------------


def test_cancel_leaves_no_partial_output(tmp_path, samples, invert):
    cancel = threading.Event()
    settings = Settings(style="invert", batch=2).replace(**FAST)
    dst = tmp_path / "cancelled.mp4"

    def stop_after_some(event):
        if event.frames_done >= 10:
            cancel.set()

    with pytest.raises(Cancelled):
        stylize_video(samples / "cup.mp4", dst, settings, network=invert,
                      on_progress=stop_after_some, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_input_is_stylized_as_far_as_it_decodes_with_one_warning(
        tmp_path, samples, invert, suffix):
    # One policy for every container (a cut .mkv used to pass silently, a cut .mp4 to
    # be refused): every frame that decodes, and one "ended at X s of Y s" warning. The
    # cut is the input's own damage, not something vidstyle lost: no data_lost (exit 0).
    # cup.mp4 keeps its index in front, so a cut copy still opens.
    if suffix == ".mp4":
        data, frames, seconds = (samples / "cup.mp4").read_bytes(), 217, 8.10
    else:
        whole = make_clip(tmp_path / "whole.mkv", frames=25, audio_tracks=1)
        data, frames, seconds = whole.read_bytes(), 25, 1.0
        whole.unlink()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) * 3 // 5])
    result = run(cut, tmp_path / f"cut.out{suffix}", invert)
    assert 0 < result.frames < frames
    assert result.ended_early is not None and not result.data_lost
    ended = [w for w in result.warnings if w.startswith("video ended at")]
    assert len(ended) == 1 and " s of " in ended[0]
    assert result.to_dict()["ended_early"]["of"] == pytest.approx(seconds, abs=0.05)
    assert len(decoded_frames(result.dst)) == result.frames
    assert cut.read_bytes() == data[: len(cut.read_bytes())]  # input untouched
    assert leftovers(tmp_path) == []


def test_existing_output_is_not_overwritten(tmp_path, samples, invert):
    dst = tmp_path / "taken.mp4"
    dst.write_bytes(b"precious")
    with pytest.raises(OutputError, match="already exists"):
        run(samples / "cup.mp4", dst, invert)
    assert dst.read_bytes() == b"precious"
    run(samples / "cup.mp4", dst, invert, duration=0.2, output={"overwrite": True})
    assert dst.stat().st_size > 1000


def test_input_is_never_the_output(tmp_path, samples, invert):
    src = tmp_path / "same.mp4"
    shutil.copy(samples / "cup.mp4", src)
    with pytest.raises(OutputError, match="overwrite the input"):
        run(src, src, invert, output={"overwrite": True})


def test_unwritable_output_folder(tmp_path, samples, invert):
    with pytest.raises(OutputError, match="does not exist"):
        run(samples / "cup.mp4", tmp_path / "nowhere" / "x.mp4", invert)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permission bits
            pytest.skip("running as root: permission bits are not enforced")
        with pytest.raises(OutputError, match="not writable"):
            run(samples / "cup.mp4", locked / "x.mp4", invert)
    finally:
        locked.chmod(0o700)


@contextlib.contextmanager
def tiny_filesystem(path, size="300k"):
    path.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_full_disk_gives_clear_error_and_no_partial_file(tmp_path, samples, invert):
    with tiny_filesystem(tmp_path / "full") as full:
        with pytest.raises(OutputError, match="no space left"):
            run(samples / "bigbuckbunny.mp4", full / "big.mp4", invert,
                output={"preset": "ultrafast", "crf": 0})
        assert list(full.iterdir()) == []


def test_unknown_device_is_a_settings_error(tmp_path, samples, invert):
    with pytest.raises(SettingsError, match="device"):
        run(samples / "cup.mp4", tmp_path / "x.mp4", invert, device="tpu")
    with pytest.raises(SettingsError, match="CUDA"):
        if __import__("torch").cuda.is_available():
            pytest.skip("a GPU is present")
        run(samples / "cup.mp4", tmp_path / "x.mp4", invert, device="cuda")


def test_chapters_and_metadata_are_copied(tmp_path, invert):
    src = make_clip(tmp_path / "plain.mp4", frames=25, audio_tracks=1)
    chaptered = tmp_path / "chapters.mp4"
    millisecond = __import__("fractions").Fraction(1, 1000)
    with av.open(str(src)) as i, av.open(str(chaptered), "w") as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        o.set_chapters([
            {"id": 1, "start": 0, "end": 500, "time_base": millisecond,
             "metadata": {"title": "Intro"}},
            {"id": 2, "start": 500, "end": 1000, "time_base": millisecond,
             "metadata": {"title": "Main"}},
        ])
        o.metadata["title"] = "A test clip"
        for packet in i.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                o.mux(packet)
    result = run(chaptered, tmp_path / "out.mp4", invert)
    with av.open(str(result.dst)) as c:
        assert [ch["metadata"]["title"] for ch in c.chapters()] == ["Intro", "Main"]
        assert c.metadata["title"] == "A test clip"
    assert result.warnings == []


def test_undecodable_audio_packet_is_skipped_with_a_warning(tmp_path, samples, invert):
    # Transcoding path (AAC cannot go into WebM): garble one packet's payload.
    from vidstyle.media.decode import Demuxer
    from vidstyle.media.encode import VideoWriter
    from vidstyle.media.probe import probe

    src = make_clip(tmp_path / "a.mp4", audio_tracks=1, frames=10)
    info = probe(src)
    out_settings = Settings().output
    out_settings.codec, out_settings.preset = "libvpx-vp9", "ultrafast"
    with Demuxer(info, other_streams=True) as demuxer:
        writer = VideoWriter(tmp_path / "o.webm", info, demuxer.container, out_settings)
        garbled = 0
        for item in demuxer.items():
            if isinstance(item, av.Packet):
                if garbled == 0 and item.size > 20:
                    item = _garble(item)
                    garbled += 1
                writer.write_packet(item)
            else:
                writer.write_frame(item, 255 - item.image)
        writer.close()
    assert writer.report.skipped_packets >= 1
    assert any("skipped" in w for w in writer.report.warnings)
    with av.open(str(tmp_path / "o.webm")) as c:
        assert c.streams.audio[0].codec_context.name == "opus"


def _garble(packet: av.Packet) -> av.Packet:
    broken = av.Packet(bytes([0xFF]) * packet.size)
    broken.pts, broken.dts, broken.time_base = packet.pts, packet.dts, packet.time_base
    broken.stream = packet.stream
    return broken


def test_the_stylizer_closes_its_engine(samples, invert):
    from vidstyle.engines.base import EngineBase

    closed = []

    class Watched(EngineBase):
        def close(self):
            closed.append(True)

    with Stylizer(Settings(style="scream"), network=invert) as stylizer:
        stylizer._engine = Watched()
    assert closed == [True] and stylizer._engine is None


# -- issue 13: every file stylized whole or refused in one line -------------------------


class Counting(torch.nn.Module):
    """Inversion that counts its calls: proves a refusal came before any frame ran."""

    size_multiple = 4

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return 1.0 - x


def make_ac3_avi(path, seconds: float = 11.3, damaged_packet: int = 40):
    """MPEG-4 video + AC-3 audio in AVI, one audio packet garbled (the reported clip)."""
    container = av.open(str(path), "w")
    video = container.add_stream("mpeg4", rate=25)
    video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
    audio = container.add_stream("ac3", rate=48000)
    audio.codec_context.layout = "stereo"
    for i in range(int(seconds * 25)):
        frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), i % 255, np.uint8),
                                           format="rgb24")
        frame.pts = i
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    tone = (0.2 * np.sin(np.arange(int(seconds * 48000)) / 20)).astype(np.float32)
    count = 0
    for start in range(0, len(tone), 1536):
        chunk = np.pad(tone[start:start + 1536], (0, max(0, start + 1536 - len(tone))))
        frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp",
                                           layout="stereo")
        frame.sample_rate, frame.pts = 48000, start
        for packet in audio.encode(frame):
            if count == damaged_packet:
                packet = _garble(packet)
            container.mux(packet)
            count += 1
    container.mux(audio.encode(None))
    container.close()
    return path


def audio_seconds(path, track: int = 0) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[track]
        ends = [float((p.pts + (p.duration or 0)) * p.time_base)
                for p in container.demux(stream) if p.pts is not None and p.size]
    return max(ends)


def test_avi_with_ac3_and_a_damaged_packet_keeps_all_of_its_audio(tmp_path, invert):
    # Reported: 11.3 s of AC-3 came out as 2.3 s, exit 0, no warning. The cause was the
    # AVI muxer mistiming copied AC-3 (any AC-3, damaged or not); it is re-encoded now.
    src = make_ac3_avi(tmp_path / "clip.avi")
    result = run(src, tmp_path / "clip.out.avi", invert)
    assert audio_seconds(src) == pytest.approx(11.3, abs=0.05)
    assert abs(audio_seconds(result.dst) - audio_seconds(src)) < 0.1
    assert [f["fate"] for f in result.streams] == ["stylized", "transcoded"]
    assert video_timestamps(result.dst)[0] == 0.0


def test_transcoded_audio_fills_undecodable_packets_with_silence(tmp_path, invert):
    src = make_clip(tmp_path / "a.mp4", audio_tracks=1, frames=50)
    damaged = tmp_path / "damaged.mp4"
    with av.open(str(src)) as i, av.open(str(damaged), "w") as o:
        streams = {s.index: o.add_stream_from_template(s) for s in i.streams}
        audio_count = 0
        for packet in i.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "audio":
                audio_count += 1
                if 10 <= audio_count < 20:  # ten packets (0.23 s) the decoder refuses
                    packet = _garble(packet)
            packet.stream = streams[packet.stream.index]
            o.mux(packet)
    result = run(damaged, tmp_path / "out.webm", invert,
                 output={"codec": "libvpx-vp9", "crf": 50})
    assert result.streams[1]["fate"] == "transcoded"
    assert abs(audio_seconds(result.dst) - audio_seconds(damaged)) < 0.1


TINY_SIZES = [(1, 1), (2, 2), (3, 5), (11, 11), (1920, 2), (2, 400)]


@pytest.mark.parametrize("temporal", TEMPORAL_MODES)
@pytest.mark.parametrize("size", TINY_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_any_frame_size_is_stylized_by_a_real_network(tmp_path, default_compile, size,
                                                      temporal):
    # 1x1 .. 1920x2 raised "Padding size should be less than the corresponding input
    # dimension" in the Johnson network's reflection padding, and with the flicker filter
    # on (the default) DIS's "The input image must have either width or height >= 12"
    # (issue 40). Every temporal mode, at the settings a user gets otherwise.
    src = make_clip(tmp_path / "tiny.mkv", size=size, frames=3, pix_fmt="yuv444p")
    settings = user_defaults().replace(temporal=temporal)
    result = stylize_video(src, tmp_path / "tiny.out.mkv", settings)
    frames = decoded_frames(result.dst)
    assert result.frames == len(frames) == 3
    assert all((f.width, f.height) == size for f in frames)
    assert not result.data_lost and result.warnings == []


def test_a_236_character_stem_works_end_to_end(tmp_path, invert):
    src = make_clip(tmp_path / ("s" * 236 + ".mp4"), frames=3)
    result = run(src, None, invert)
    assert len(result.dst.name) == 236 + len(".invert.mp4")
    assert leftovers(tmp_path) == []


def test_an_output_that_is_another_input_of_the_run_is_refused(tmp_path, invert):
    # `apply clip.mp4 clip.invert.mp4 --overwrite` replaced its second input with the
    # first one's output, then stylized that again.
    from vidstyle.executors import run_apply

    first = make_clip(tmp_path / "clip.mp4", frames=3)
    second = make_clip(tmp_path / "clip.invert.mp4", frames=5)
    before = second.read_bytes()
    settings = Settings(style="invert", batch=2).replace(**FAST).replace(
        output={"preset": "ultrafast", "overwrite": True})
    results, failures = run_apply([first, second], settings, network=invert)
    assert second.read_bytes() == before
    assert [(p, "overwrite the input" in m) for p, m in failures] == [(first, True)]
    assert [r.dst.name for r in results] == ["clip.invert.invert.mp4"]


def test_output_problems_are_refused_before_any_work(tmp_path, samples):
    network = Counting()
    folder = tmp_path / "out.mp4"
    folder.mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        run(samples / "cup.mp4", folder, network, output={"overwrite": True})
    with pytest.raises(OutputError, match="does not exist"):
        run(samples / "cup.mp4", tmp_path / "missing" / "x.mp4", network)
    assert network.calls == 0


@pytest.mark.parametrize("start", [0.48, 0.5, 7.0])
def test_start_at_or_past_the_last_frame_is_one_line(tmp_path, invert, start):
    # 12 frames at 25 fps: the last one is at 0.44 s, the file ends at 0.48 s.
    src = make_clip(tmp_path / "a.mp4", frames=12, audio_tracks=1)
    with pytest.raises((SettingsError, InputError)) as err:
        run(src, tmp_path / "o.mp4", invert, start=start)
    assert "\n" not in str(err.value) and "--start" in str(err.value) or "no video" in str(
        err.value)
    assert leftovers(tmp_path) == [] and not (tmp_path / "o.mp4").exists()


def test_encoder_options_are_refused_before_the_first_frame(tmp_path):
    network = Counting()
    src = make_clip(tmp_path / "a.mp4", frames=3)
    with pytest.raises(SettingsError, match="preset") as err:
        run(src, tmp_path / "o.mp4", network, output={"preset": "fastest"})
    assert "\n" not in str(err.value)
    with pytest.raises(SettingsError, match="cannot hold libx264"):
        run(src, tmp_path / "o.webm", network, output={"codec": "libx264"})
    assert network.calls == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_webm_input_works_with_no_flags(tmp_path, invert):
    src = tmp_path / "in.webm"
    with av.open(str(src), "w") as c:
        stream = c.add_stream("libvpx-vp9", rate=25, options={"deadline": "realtime"})
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((24, 32, 3), np.uint8), format="rgb24")
            frame.pts = i
            c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    settings = Settings(style="invert", batch=2, temporal="off")  # default codec: auto
    result = stylize_video(src, None, settings, network=invert)
    with av.open(str(result.dst)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
    assert result.frames == 3


def test_outputs_are_marked_and_folder_inputs_skip_them(tmp_path, invert):
    from vidstyle.files import expand_inputs
    from vidstyle.media.probe import own_output_reason, written_by_vidstyle

    src = make_clip(tmp_path / "clip.mp4", frames=3)
    for suffix in (".mp4", ".mkv", ".mov", ".avi"):
        dst = run(src, tmp_path / f"clip.invert{suffix}", invert).dst
        assert written_by_vidstyle(dst)
    assert not written_by_vidstyle(src)
    skipped: list = []
    assert expand_inputs([tmp_path], skip=own_output_reason, skipped=skipped) == [src]
    assert len(skipped) == 4 and all("output of vidstyle" in why for _, why in skipped)


def test_kill_9_leftover_is_swept_by_the_next_run_into_that_folder(tmp_path, invert):
    from vidstyle.files import temp_path_for

    src = make_clip(tmp_path / "clip.mp4", frames=3)
    code = ("import sys, time; sys.path.insert(0, {!r}); from pathlib import Path; "
            "from vidstyle.files import temp_path_for; "
            "p = temp_path_for(Path({!r})); p.write_bytes(b'partial'); print(p, flush=True); "
            "time.sleep(60)").format(str(Path(__file__).resolve().parent.parent),
                                 str(tmp_path / "clip.invert.mp4"))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    leftover = Path(child.stdout.readline().strip())
    child.kill()  # kill -9: no cleanup runs
    child.wait()
    assert leftover.exists() and temp_path_for(src).parent == leftover.parent
    run(src, tmp_path / "other.mp4", invert)
    assert not leftover.exists() and leftovers(tmp_path) == []


def test_a_trimmed_transcoded_track_is_as_long_as_the_trim(tmp_path, samples, invert):
    result = run(samples / "bigbuckbunny.mp4", tmp_path / "seg.webm", invert, start=2.0,
                 duration=1.0, output={"codec": "libvpx-vp9", "crf": 50})
    assert result.streams[1]["fate"] == "transcoded"
    assert abs(audio_seconds(result.dst) - 1.0) < 0.1
