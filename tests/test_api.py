"""stylize_video end to end: geometry, timing, colour, audio, atomic output, bad input."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading

import av
import numpy as np
import pytest
import torch
from conftest import audio_packets, decoded_frames, make_clip, video_timestamps

from vidstyle import Settings, Stylizer, stylize_video
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


def test_max_size_runs_small_and_comes_back_full_size(tmp_path, samples, invert):
    out = run(samples / "bigbuckbunny.mp4", tmp_path / "small.mp4", invert,
              max_size=160, duration=0.2).dst
    frame = decoded_frames(out)[0]
    assert (frame.width, frame.height) == (1280, 720)


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


def test_truncated_input_fails_and_leaves_nothing(tmp_path, samples, invert):
    data = (samples / "cup.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="truncated"):
        run(cut, tmp_path / "cut.out.mp4", invert)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]
    assert cut.read_bytes() == data[: len(data) // 3]  # input untouched


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


def test_warmup_frames_run_through_the_engine_but_are_not_written(tmp_path, samples):
    seen = []

    class Recording(torch.nn.Module):
        size_multiple = 1

        def forward(self, x):
            seen.append(x.shape[0])
            return x

    settings = Settings(style="x", batch=1, start=2.0, duration=0.4).replace(**FAST)
    result = Stylizer(settings, network=Recording()).video(
        samples / "bigbuckbunny.mp4", tmp_path / "seg.mp4", warmup=0.2, video_only=True
    )
    assert result.frames == 10
    assert sum(seen) == 15  # 5 warm-up frames (0.2 s at 25 fps) + 10 written
    with av.open(str(result.dst)) as c:
        assert [s.type for s in c.streams] == ["video"]
    assert video_timestamps(result.dst)[0] == pytest.approx(0.0, abs=1e-3)


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
