"""The interface between the streaming pipeline and whatever stylizes the frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch

# (iteration, iterations, loss): an optimising engine reports inside a frame.
IterationCallback = Callable[[int, int, float], None]


class Engine(Protocol):
    """Stylizes the frames of one video, in display order.

    `stylize` takes a uint8 CPU tensor ``N x H x W x 3`` (RGB) of consecutive frames and
    returns a uint8 CPU tensor of the same shape. Calls follow the video's order, so an
    engine may carry temporal state (the previous output, optical flow) from one call to
    the next; `reset` forgets it (a new video, or a cut). Engines choose their own batch
    handling: a feed-forward network runs the whole batch at once, an optimiser may walk
    it frame by frame.

    `on_iteration`, when set, is called inside a frame by engines that iterate (Gatys:
    minutes per frame, so progress and cancellation reach into it); others never call it.
    Engines own threads or device memory: their owner closes them (`close`, or `with`).

    Two hooks let an engine that depends on the video's clock (a style schedule) take part
    without its caller knowing which engine it is: `check_video` refuses, before any work,
    a video the engine cannot do, and `frames_from` is what the pipeline reads frames
    from (the demuxer itself, or a wrapper that tells the engine each frame's time).
    """

    on_iteration: IterationCallback | None

    def stylize(self, frames: torch.Tensor) -> torch.Tensor: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...

    def check_video(self, src: Path, duration: float | None) -> None: ...

    def frames_from(self, demuxer): ...


class EngineBase:
    """What every engine shares: the iteration hook and the context-manager protocol."""

    on_iteration: IterationCallback | None = None

    def close(self) -> None:
        """Release threads and memory; the engine is not used afterwards."""

    def check_video(self, src: Path, duration: float | None) -> None:
        """Raise a `VidstyleError` for a video of `duration` seconds this engine cannot
        stylize; every video will do for most engines."""

    def frames_from(self, demuxer):
        """What the pipeline reads `demuxer`'s frames through: the demuxer itself here."""
        return demuxer

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
