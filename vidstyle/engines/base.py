"""The interface between the streaming pipeline and whatever stylizes the frames."""

from __future__ import annotations

from typing import Protocol

import torch


class Engine(Protocol):
    """Stylizes the frames of one video, in display order.

    `stylize` takes a uint8 CPU tensor ``N x H x W x 3`` (RGB) of consecutive frames and
    returns a uint8 CPU tensor of the same shape. Calls follow the video's order, so an
    engine may carry temporal state (the previous output, optical flow) from one call to
    the next; `reset` forgets it (a new video, or a cut). Engines choose their own batch
    handling: a feed-forward network runs the whole batch at once, an optimiser may walk
    it frame by frame.
    """

    def stylize(self, frames: torch.Tensor) -> torch.Tensor: ...

    def reset(self) -> None: ...
