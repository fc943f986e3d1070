"""Looking before committing to a long run: contact sheets and clip strips.

* `contact_sheet`: one photo in every style (or a chosen few), labelled tiles in a grid.
* `clip_strip`: a few evenly spaced frames of a clip, original beside stylized, in
  seconds (PyAV seeks to each time instead of decoding the whole clip).
* `schedule_strip`: for a style schedule, one row per change: frames just before, at
  the start, middle and end of the transition, and just after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from vidstyle.config import Settings
from vidstyle.engines.fast import FastEngine
from vidstyle.engines.scheduled import build_scheduled_engine
from vidstyle.errors import InputError, OutputError
from vidstyle.files import atomic_output
from vidstyle.media.decode import frame_to_rgb
from vidstyle.styles.paintings import read_style_image
from vidstyle.styles.resolve import list_styles, load_style

LABEL_HEIGHT = 22
GAP = 4
BACKGROUND = (255, 255, 255)
JPEG_QUALITY = 88  # keeps a 31-tile sheet of 256 px tiles under 500 KB


def stylize_pixels(pixels: np.ndarray, network: torch.nn.Module) -> np.ndarray:
    """One H x W x 3 uint8 RGB image through `network`, padded as the engine does."""
    engine = FastEngine(network, torch.device("cpu"))
    return engine.stylize(torch.from_numpy(np.ascontiguousarray(pixels))[None])[0].numpy()


def fit_within(pixels: np.ndarray, size: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    scale = size / max(height, width)
    if scale >= 1.0:
        return pixels
    return cv2.resize(pixels, (max(1, round(width * scale)), max(1, round(height * scale))),
                      interpolation=cv2.INTER_AREA)


def labelled(pixels: np.ndarray, label: str) -> np.ndarray:
    """The tile with a white strip and its label underneath."""
    strip = np.full((LABEL_HEIGHT, pixels.shape[1], 3), BACKGROUND, dtype=np.uint8)
    cv2.putText(strip, label, (4, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (20, 20, 20), 1, cv2.LINE_AA)
    return np.vstack([pixels, strip])


def grid(tiles: Sequence[np.ndarray], columns: int) -> np.ndarray:
    """Tiles (same size) in rows of `columns`, separated by white gaps."""
    height, width = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * (height + GAP) + GAP, columns * (width + GAP) + GAP, 3),
                    BACKGROUND, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = GAP + row * (height + GAP), GAP + column * (width + GAP)
        sheet[top : top + height, left : left + width] = tile
    return sheet


def contact_sheet(
    photo: str | Path, styles: Sequence[str] | None = None, *, tile: int = 256,
    columns: int = 6,
) -> np.ndarray:
    """`photo` (original first) in each of `styles` (default: every style), as RGB uint8."""
    image = read_style_image(photo)  # any picture; StyleError if unreadable
    pixels = (image[0].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    pixels = fit_within(pixels, tile)
    names = list(styles) if styles else [info.name for info in list_styles()]
    tiles = [labelled(pixels, "original")]
    tiles += [labelled(stylize_pixels(pixels, load_style(name)), name) for name in names]
    return grid(tiles, min(columns, len(tiles)))


@contextlib.contextmanager
def _open_clip(clip: Path) -> Iterator[tuple[av.container.InputContainer, av.VideoStream,
                                             float]]:
    """(container, video stream, duration in s); decoding errors as one InputError."""
    try:
        with av.open(str(clip)) as container:
            if not container.streams.video:
                raise InputError(clip, "no video stream")
            stream = container.streams.video[0]
            yield container, stream, _duration(container, stream)
    except av.FFmpegError as exc:
        raise InputError(clip, f"cannot decode ({exc})") from None


def sample_frames(clip: str | Path, count: int, size: int) -> list[tuple[float, np.ndarray]]:
    """`count` frames at evenly spaced times (centres of equal slices), long side <= size."""
    with _open_clip(Path(clip)) as (container, stream, duration):
        frames = []
        for k in range(count):
            target = duration * (k + 0.5) / count
            frames.append((target, fit_within(_frame_at(container, stream, target), size)))
        return frames


def _duration(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _frame_at(container, stream, seconds: float) -> np.ndarray:
    """The first frame at or after `seconds` (seek to the keyframe before, decode forward)."""
    start = stream.start_time or 0
    container.seek(start + int(seconds / stream.time_base), stream=stream, backward=True)
    last = None
    for frame in container.decode(stream):
        last = frame
        if frame.time is None or frame.time >= seconds + float(start * stream.time_base):
            break
    if last is None:
        raise InputError(Path(container.name), f"no frame decodes at {seconds:.2f} s")
    return frame_to_rgb(last)


def clip_strip(
    clip: str | Path, style: str, *, frames: int = 4, size: int = 320,
    strength: float = 1.0, preserve_color: bool = False,
) -> np.ndarray:
    """Rows of (original, stylized) for `frames` evenly spaced moments of `clip`."""
    network = load_style(style, strength=strength, preserve_color=preserve_color)
    rows = []
    for seconds, pixels in sample_frames(clip, frames, size):
        styled = stylize_pixels(pixels, network)
        rows.append(np.hstack([labelled(pixels, f"{seconds:.1f} s"),
                               labelled(styled, style)]))
    return grid(rows, 1)


# Seconds before and after a transition that its preview row also shows.
CHANGE_MARGIN = 0.5


def schedule_strip(clip: str | Path, spec: str, *, transition: float = 1.0,
                   size: int = 320, strength: float = 1.0,
                   preserve_color: bool = False) -> np.ndarray:
    """One row per style change of schedule `spec` on `clip`: the frames at 5 moments
    around it, each labelled with its time and mix, through the scheduled engine."""

    settings = Settings(style=spec, transition=transition, temporal="off",
                        strength=strength, preserve_color=preserve_color)
    clip = Path(clip)
    rows = []
    with build_scheduled_engine(settings, torch.device("cpu"), torch.float32) as engine, \
            _open_clip(clip) as (container, stream, duration):
        engine.schedule.check_within(duration or None, clip)
        for start, end, _, cue in engine.schedule.changes():
            moments = [start - CHANGE_MARGIN, start, cue.time, end, end + CHANGE_MARGIN]
            moments = [min(max(t, 0.0), max(duration - 0.05, 0.0)) for t in moments]
            tiles = []
            for seconds in moments:
                pixels = fit_within(_frame_at(container, stream, seconds), size)
                engine.reset()
                engine.times.append(seconds)
                styled = engine.stylize(torch.from_numpy(np.ascontiguousarray(pixels))[None])
                tiles.append(labelled(styled[0].numpy(), _mix_label(engine, seconds)))
            rows.append(np.hstack(tiles))
    if not rows:
        raise InputError(clip, "the style schedule has no changes to show")
    return grid(rows, 1)


def _mix_label(engine, seconds: float) -> str:
    before, after, weight = engine.key_at(seconds)
    if before == after:
        return f"{seconds:.2f} s {after}"
    return f"{seconds:.2f} s {before} {1 - weight:.0%} {after} {weight:.0%}"


def write_image(path: str | Path, pixels: np.ndarray, *, suffix: str | None = None) -> Path:
    """Write RGB `pixels`; the format follows `suffix` (default: the path's: .png, .jpg ...)."""
    path = Path(path)
    suffix = suffix or path.suffix or ".png"
    try:
        is_jpeg = suffix.lower() in (".jpg", ".jpeg")
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if is_jpeg else []
        ok, encoded = cv2.imencode(suffix, pixels[:, :, ::-1], params)
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(path, "unsupported image format (use .png or .jpg)")
    try:
        path.write_bytes(encoded.tobytes())
    except OSError as exc:
        raise OutputError(path, exc.strerror or "cannot write") from None
    return path


def save_picture(path: str | Path, pixels: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write a preview the way every output is written: an existing file is refused
    unless `overwrite`, and the file appears whole or not at all. Returns its full path."""
    path = Path(path)
    with atomic_output(path, overwrite) as tmp:
        write_image(tmp, pixels, suffix=path.suffix or ".png")
    return path.resolve()
