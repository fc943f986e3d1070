"""Camera-like inputs made with PyAV at test time: what phones, action cameras and drones
write. HEVC Main 10 in HLG or PQ with mastering-display and light-level side data (as
SEI, x265's `master-display` and `max-cll`), a start timecode (MOV and MP4 write it as a
`tmcd` track), a GoPro-style data track (`gpmd`, FFmpeg's bin_data), AAC audio, 240 fps
variable timing, display rotation. The picture is an HDR test pattern of known light
levels, so a reader can check what the pixels mean against what the tags say.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np

from vidstyle.media import color

# Patch levels of the test pattern (cd/m2): shadows to a 1000 cd/m2 highlight, BT.2408's
# reference white (203) among them.
GREY_LEVELS = (0.5, 5.0, 20.0, 60.0, 120.0, 203.0, 400.0, 700.0, 1000.0)
# Coloured patches inside BT.709's gamut (so the BT.2020 <-> BT.709 conversions are exact),
# as BT.709 linear RGB times cd/m2.
COLOUR_PATCHES = ((0.8, 0.2, 0.1), (0.15, 0.7, 0.2), (0.1, 0.2, 0.8),
                  (0.8, 0.7, 0.1), (0.6, 0.1, 0.6), (0.1, 0.6, 0.7))
COLOUR_LEVELS = (60.0, 400.0)
PATCH = 16  # pixels; a multiple of the chroma block, so patches keep their colour
# HDR10's common grade: a P3-D65 mastering display of 1000 cd/m2, MaxCLL 1000, MaxFALL 400.
MASTERING = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
LIGHT_LEVEL = (1000, 400)
MIN_FRAMES = 3
DATA_PAYLOAD = b"DEVC\x00\x00\x00\x10"  # a gpmd-looking packet: 4CC, type, size


@dataclass(frozen=True)
class Camera:
    """One camera-like input."""

    container: str = "mov"
    transfer: str | None = "hlg"  # "hlg", "pq", or None for SDR BT.709
    side_data: bool = True  # mastering display + content light level (PQ/HLG only)
    size: tuple[int, int] = (160, 96)
    frames: int = 4
    rate: int = 30
    timecode: str | None = None
    data_track: bool = False
    audio: bool = True
    rotation: int = 0
    slow_motion: bool = False  # 240 fps with uneven frame spacing (variable timing)
    dolby_vision_tag: bool = False

    @property
    def name(self) -> str:
        bits = [self.container, self.transfer or "sdr", f"{self.size[0]}x{self.size[1]}"]
        for flag in ("timecode", "data_track", "slow_motion"):
            if getattr(self, flag):
                bits.append(flag.replace("_", ""))
        if self.rotation:
            bits.append(f"rot{self.rotation}")
        if not self.side_data:
            bits.append("nosidedata")
        return "-".join(bits)

    @property
    def hdr(self) -> color.HdrFormat | None:
        trc = {"hlg": color.TRC_HLG, "pq": color.TRC_PQ}.get(self.transfer or "")
        return None if trc is None else color.HdrFormat(trc)

    def but(self, **changes) -> Camera:
        return replace(self, **changes)


def pattern_nits(width: int, height: int) -> np.ndarray:
    """The test pattern as BT.709-primaries display light (cd/m2), H x W x 3: a row of
    grey patches, a row of coloured ones at two levels, and a grey ramp beneath."""
    picture = np.full((height, width, 3), 20.0, np.float32)
    patches = [(level,) * 3 for level in GREY_LEVELS]
    patches += [tuple(level * c for c in rgb) for level in COLOUR_LEVELS
                for rgb in COLOUR_PATCHES]
    for n, rgb in enumerate(patches):
        y, x = divmod(n, max(width // PATCH, 1))
        if (y + 1) * PATCH > height - PATCH:
            break
        picture[y * PATCH:(y + 1) * PATCH, x * PATCH:(x + 1) * PATCH] = rgb
    ramp = color.pq_to_nits(np.linspace(0, color.nits_to_pq(np.float64(1000)), width))
    picture[height - PATCH:] = ramp[None, :, None]
    return picture


def patch_centres(width: int, height: int) -> list[tuple[slice, slice]]:
    """The inner 8 x 8 pixels of each patch `pattern_nits` drew (chroma and coding
    blur stay at the edges)."""
    count = len(GREY_LEVELS) + len(COLOUR_PATCHES) * len(COLOUR_LEVELS)
    per_row = max(width // PATCH, 1)
    centres = []
    for n in range(count):
        y, x = divmod(n, per_row)
        if (y + 1) * PATCH > height - PATCH:
            break
        centres.append((slice(y * PATCH + 4, y * PATCH + 12), slice(x * PATCH + 4,
                                                                     x * PATCH + 12)))
    return centres


def pattern_signal(camera: Camera) -> np.ndarray:
    """The pattern as the camera codes it: non-linear RGB, uint16 full scale (BT.2020
    HLG/PQ, or BT.709 SDR with 203 cd/m2 as white)."""
    width, height = camera.size
    nits = pattern_nits(width, height)
    hdr = camera.hdr
    if hdr is None:
        relative = np.clip(nits / color.REFERENCE_WHITE, 0, 1)
        return np.round(65535 * relative ** (1 / color.SDR_GAMMA)).astype(np.uint16)
    bt2020 = np.maximum(nits @ color.BT709_TO_BT2020.T, 0)
    return np.round(65535 * color.nits_to_signal(bt2020, hdr.transfer)).astype(np.uint16)


def frame_times(camera: Camera) -> list[int]:
    """Frame timestamps in 1/rate ticks (slow motion: 1/240 s ticks, some frames held
    two ticks, as phones write when the light drops)."""
    if not camera.slow_motion:
        return list(range(camera.frames))
    times, tick = [], 0
    for n in range(camera.frames):
        times.append(tick)
        tick += 2 if n % 3 == 2 else 1
    return times


def make_camera_clip(path: Path, camera: Camera) -> Path:
    """Write `camera`'s clip to `path` (its suffix is the container)."""
    # Measured here (x265 4.2 through FFmpeg 8.1): a 2-frame clip with master-display
    # SEI comes out with garbage decode times (-6585770520982412133): not a camera file.
    assert camera.frames >= MIN_FRAMES, f"x265 needs {MIN_FRAMES}+ frames for sane times"
    rate = 240 if camera.slow_motion else camera.rate
    width, height = camera.size
    hdr = camera.hdr
    with av.open(str(path), "w", format=camera.container) as out:
        params = ["log-level=error"]
        if hdr is not None and camera.side_data:
            params += [f"master-display={MASTERING}", f"max-cll={LIGHT_LEVEL[0]},"
                       f"{LIGHT_LEVEL[1]}"]
        video = out.add_stream("libx265", rate=rate, options={
            "x265-params": ":".join(params), "preset": "ultrafast", "crf": "12"})
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p10le"
        video.time_base = fractions.Fraction(1, rate)
        video.codec_context.time_base = fractions.Fraction(1, rate)
        ctx = video.codec_context
        ctx.color_range = color.RANGE_LIMITED
        if hdr is not None:
            ctx.color_primaries, ctx.color_trc, ctx.colorspace = (
                color.PRIMARIES_BT2020, hdr.transfer, color.MATRIX_BT2020_NCL)
        else:
            ctx.color_primaries, ctx.color_trc, ctx.colorspace = (
                color.PRIMARIES_BT709, color.TRC_BT709, color.MATRIX_BT709)
        ctx.codec_tag = "dvh1" if camera.dolby_vision_tag else "hvc1"
        if camera.timecode:
            video.metadata["timecode"] = camera.timecode
        if camera.rotation:
            video.set_display_rotation(camera.rotation)
        audio = out.add_stream("aac", rate=48000) if camera.audio else None
        data = out.add_data_stream("bin_data") if camera.data_track else None
        if data is not None:
            data.time_base = fractions.Fraction(1, 1000)
            data.metadata["handler_name"] = "GoPro MET"
        signal = pattern_signal(camera)
        matrix = ctx.colorspace
        for n, tick in enumerate(frame_times(camera)):
            picture = signal.copy()
            # A moving bar over the ramp, so frames differ (and encoders code motion).
            x = (n * 8) % max(width - 8, 1)
            picture[height - 8:, x:x + 8] = 65535 // 2
            frame = av.VideoFrame.from_ndarray(picture, format="rgb48le").reformat(
                format="yuv420p10le", dst_colorspace=matrix,
                dst_color_range=color.RANGE_LIMITED)
            frame.color_primaries, frame.color_trc = ctx.color_primaries, ctx.color_trc
            frame.pts = tick
            # Not video.time_base: the muxer changes that at its first packet (MOV's
            # 1/15360), and later frames would be rescaled to time 0.
            frame.time_base = fractions.Fraction(1, rate)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if data is not None:  # one sample per frame, as GoPro's cameras write
            for n, tick in enumerate(frame_times(camera)):
                packet = av.Packet(DATA_PAYLOAD + bytes([n]))
                packet.stream, packet.time_base = data, data.time_base
                packet.pts = packet.dts = round(tick * 1000 / rate)
                packet.duration = round(1000 / rate)
                out.mux(packet)
        if audio is not None:
            seconds = (frame_times(camera)[-1] + 1) / rate
            _write_tone(out, audio, seconds)
    return path


def _write_tone(out: av.container.OutputContainer, audio: av.audio.stream.AudioStream,
                seconds: float) -> None:
    samples = int(seconds * 48000)
    tone = (0.2 * np.sin(np.arange(samples) / 15)).astype(np.float32)
    size = audio.codec_context.frame_size or 1024
    for start in range(0, samples, size):
        chunk = np.zeros(size, np.float32)
        piece = tone[start:start + size]
        chunk[:len(piece)] = piece
        frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp",
                                           layout="stereo")
        frame.sample_rate, frame.pts = 48000, start
        out.mux(audio.encode(frame))
    out.mux(audio.encode(None))
