"""Helpers the tests share: a stand-in network with a known answer, generated clips with
known timestamps and audio, and readers for what a written file holds. Fixtures that wrap
them live in conftest.py; test modules import these by name (never from conftest)."""

from __future__ import annotations

import fractions
import os
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch
from torch import nn

from vidstyle import Settings

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


class InvertNetwork(nn.Module):
    """A style network with a known answer: 1 - x. Any shift from padding or cropping,
    any colour-matrix or range mistake, shows up as a large difference from 255 - input."""

    size_multiple = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 - x


def user_defaults() -> Settings:
    """`Settings()` as a user gets it: no flags, no config file, no $VIDSTYLE_COMPILE
    (conftest.py sets that to "off" for the tests that do not ask for the compile path)."""
    saved = os.environ.pop("VIDSTYLE_COMPILE", None)
    try:
        return Settings()
    finally:
        if saved is not None:
            os.environ["VIDSTYLE_COMPILE"] = saved


def leaf_settings(settings: Any, prefix: str = "") -> dict[str, Any]:
    """Every setting by its dotted key ("temporal", "output.codec", "gatys.iterations")."""
    leaves: dict[str, Any] = {}
    for field in fields(settings):
        value = getattr(settings, field.name)
        if is_dataclass(value):
            leaves |= leaf_settings(value, f"{prefix}{field.name}.")
        else:
            leaves[prefix + field.name] = value
    return leaves


def is_off(value: Any) -> bool:
    """Whether a setting's value leaves its feature out: None, False, "off" or 0."""
    if value is None or value is False or value == "off":
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def defaults_on(defaults: Any) -> dict[str, Any]:
    """The settings whose default is not off, with that default."""
    return {key: value for key, value in leaf_settings(defaults).items() if not is_off(value)}


def not_at_default(used: Any, defaults: Any) -> list[str]:
    """The settings on by default that `used` runs at another value: a test of media
    handling that sets them tests what no user gets unless it is an extra case."""
    return [key for key, value in defaults_on(defaults).items() if used.get(key) != value]


def test_pattern(width: int, height: int, index: int) -> np.ndarray:
    """A frame with structure at every scale (gradients, a moving square) in RGB."""
    ys, xs = np.mgrid[0:height, 0:width]
    frame = np.stack(
        [(xs * 255 // max(width - 1, 1)), (ys * 255 // max(height - 1, 1)),
         np.full_like(xs, 128)], axis=-1,
    ).astype(np.uint8)
    side = max(4, min(width, height) // 4)
    x0 = (index * 3) % max(width - side, 1)
    frame[height // 3 : height // 3 + side, x0 : x0 + side] = (250, 30, 30)
    return frame


def make_clip(
    path: Path,
    *,
    size: tuple[int, int] = (96, 64),
    pts_ms: list[int] | None = None,
    frames: int = 12,
    rotation: int = 0,
    audio_tracks: int = 0,
    pix_fmt: str = "yuv420p",
    color_range: int = 0,
    codec: str = "libx264",
) -> Path:
    """Write a small H.264 clip with PyAV: any size, explicit timestamps (VFR), display
    rotation, several AAC tracks, full-range pixels."""
    width, height = size
    pts_ms = pts_ms if pts_ms is not None else [i * 40 for i in range(frames)]
    container = av.open(str(path), "w")
    video = container.add_stream(codec, rate=25, options={"preset": "ultrafast", "crf": "12"})
    video.width, video.height, video.pix_fmt = width, height, pix_fmt
    millisecond = fractions.Fraction(1, 1000)
    video.codec_context.time_base = millisecond
    video.time_base = millisecond
    if color_range:
        video.codec_context.color_range = color_range
    if rotation:
        video.set_display_rotation(rotation)
    audios = []
    for track in range(audio_tracks):
        audio = container.add_stream("aac", rate=44100)
        audio.codec_context.layout = "stereo"
        audio.metadata["language"] = ("eng", "fra", "deu")[track % 3]
        audios.append(audio)
    for i, pts in enumerate(pts_ms):
        frame = av.VideoFrame.from_ndarray(test_pattern(width, height, i), format="rgb24")
        frame = frame.reformat(format=pix_fmt, dst_color_range=color_range or None)
        frame.pts, frame.time_base = pts, millisecond  # stream.time_base changes at mux
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    seconds = (pts_ms[-1] + 40) / 1000
    for track, audio in enumerate(audios):
        _write_tone(container, audio, seconds, 220.0 * (track + 1))
    container.close()
    return path


def _write_tone(container, stream, seconds: float, hz: float) -> None:
    rate, samples_per_frame = 44100, 1024
    total = int(seconds * rate)
    t = np.arange(total) / rate
    tone = (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    for start in range(0, total, samples_per_frame):
        chunk = tone[start : start + samples_per_frame]
        planar = np.stack([chunk, chunk])
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def decoded_frames(path: Path, fmt: str = "rgb24") -> list[av.VideoFrame]:
    with av.open(str(path)) as container:
        return [f for f in container.decode(video=0)]


def video_timestamps(path: Path) -> list[float]:
    return [float(f.pts * f.time_base) for f in decoded_frames(path)]


def audio_packets(path: Path, track: int = 0) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[track]
        return [bytes(p) for p in container.demux(stream) if p.size]


PHOTOS = Path(__file__).resolve().parent.parent / "samples" / "photos"
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def photo(name: str, size: int) -> torch.Tensor:
    """A sample photo as 1 x 3 x H x W RGB [0, 1], long side `size`."""
    image = cv2.imread(str(PHOTOS / name))[..., ::-1]
    h, w = image.shape[:2]
    scale = size / max(h, w)
    image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
