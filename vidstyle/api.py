"""The Python API: everything the CLI does is one call here.

    import vidstyle
    vidstyle.stylize_video("clip.mp4", style="scream")          # -> clip.scream.mp4
    with vidstyle.Stylizer(vidstyle.Settings(style="wave")) as stylizer:
        for path in paths:
            stylizer.video(path, out_dir="styled/")               # network loaded once
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from vidstyle.config import Settings
from vidstyle.device import resolve_device
from vidstyle.engines.base import Engine
from vidstyle.engines.factory import (  # noqa: F401 - two names kept for older callers
    build_engine,
    engine_precision,
    load_network,
    make_temporal_filter,
)
from vidstyle.errors import OutputError
from vidstyle.files import IMAGE_SUFFIXES, atomic_output, read_image, write_image
from vidstyle.job import VideoResult, check_window, stylize_pass
from vidstyle.media.probe import own_output_reason, probe
from vidstyle.progress import ProgressCallback
from vidstyle.resume import is_resumable, stylize_resumable
from vidstyle.styles import style_slug


def default_output_path(src: str | Path, style: str, out_dir: str | Path | None = None) -> Path:
    """clip.mp4 -> clip.<style>.mp4, beside the input or in `out_dir`."""
    src = Path(src)
    folder = Path(out_dir) if out_dir is not None else src.parent
    return folder / f"{src.stem}.{style_slug(style)}{src.suffix or '.mp4'}"


__all__ = ["Stylizer", "VideoResult", "own_output_reason", "stylize_image", "stylize_video"]


class Stylizer:
    """Holds a loaded engine so that many files reuse one network (and one device)."""

    def __init__(self, settings: Settings | None = None, *, network: nn.Module | None = None):
        self.settings = (settings or Settings()).validate()
        self.device = resolve_device(self.settings.device)
        self.dtype = engine_precision(self.settings, self.device)
        self._network = network
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = build_engine(self.settings, self.device, self.dtype, self._network)
        return self._engine

    def close(self) -> None:
        """Close the engine (its flow thread, device memory); a later call loads it anew."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def __enter__(self) -> Stylizer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def video(
        self,
        src: str | Path,
        dst: str | Path | None = None,
        *,
        out_dir: str | Path | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        inputs: Iterable[str | Path] = (),
    ) -> VideoResult:
        """Stylize one video file; see `stylize_video`.

        `inputs`: the other inputs of the same run; the output may not be, or alias, any
        of them (a batch `a.mp4 a.scream.mp4` must not write over its second input).
        """
        src = Path(src)
        settings = self.settings
        dst = Path(dst) if dst is not None else default_output_path(src, settings.style, out_dir)
        protected = [src, *(Path(p) for p in inputs)]
        info = probe(src)
        check_window(info, settings)
        # Long inputs (or --resume) go as journaled segments that survive a crash
        # (vidstyle.resume, docs/resume.md). It checks the output itself: an output its
        # own earlier run published is not "in the way".
        if is_resumable(settings, info):
            return stylize_resumable(self, settings, src, dst, info, on_progress=on_progress,
                                     cancel=cancel, inputs=protected)
        return stylize_pass(self, settings, src, dst, info, inputs=protected,
                            on_progress=on_progress, cancel=cancel)

    def image(self, src: str | Path, dst: str | Path | None = None) -> Path:
        """Stylize one still image (any format OpenCV reads); returns the output path."""
        src = Path(src)
        dst = Path(dst) if dst is not None else default_output_path(src, self.settings.style)
        if dst.suffix.lower() not in IMAGE_SUFFIXES:
            raise OutputError(dst, f"unknown image type {dst.suffix!r} (use .png or .jpg)")
        pixels = read_image(src)
        engine = self.engine
        engine.reset()
        styled = engine.stylize(torch.from_numpy(pixels)[None])[0].numpy()
        with atomic_output(dst, self.settings.output.overwrite, inputs=[src]) as tmp:
            write_image(tmp, styled, suffix=dst.suffix)
        return dst


def stylize_video(
    src: str | Path,
    dst: str | Path | None = None,
    settings: Settings | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    network: nn.Module | None = None,
    **overrides,
) -> VideoResult:
    """Stylize `src` into `dst` (default: ``<src stem>.<style><ext>`` beside it).

    Every frame keeps its timestamp; audio, subtitles, chapters and metadata are carried
    over. The output appears atomically (temp file + rename); on any error or when
    `cancel` is set, nothing is left behind. `overrides` change `settings` fields
    (``style="wave"``, ``batch=8``, ``output={"crf": 20}``...).

    Raises `InputError`, `OutputError`, `StyleError`, `SettingsError` or `Cancelled`.
    """
    settings = (settings or Settings()).replace(**overrides) if overrides else settings
    with Stylizer(settings, network=network) as stylizer:
        return stylizer.video(src, dst, on_progress=on_progress, cancel=cancel)


def stylize_image(
    src: str | Path,
    dst: str | Path | None = None,
    settings: Settings | None = None,
    *,
    network: nn.Module | None = None,
    **overrides,
) -> Path:
    """Stylize one image with the engine `settings` names (fast, gatys, fast+gatys)."""
    settings = (settings or Settings()).replace(**overrides) if overrides else settings
    with Stylizer(settings, network=network) as stylizer:
        return stylizer.image(src, dst)
