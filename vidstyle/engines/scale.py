"""`--style-scale`: the brush-stroke size relative to the frame.

A feed-forward network paints strokes of a fixed size in *its input's* pixels: what it
learnt from crops of `trained_size` pixels cut from scenes whose short side was
`TRAINING_SCENE_FACTOR` x that (`vidstyle.train.data`). Run on a 1080p frame, the same
network paints strokes that are a quarter as large relative to the picture as on a 270p
one. So the stroke size a user sees is chosen by the resolution the network runs at:

    working short side = trained_size * TRAINING_SCENE_FACTOR / style_scale

`style_scale` 1 shows the strokes at the size they had relative to the training scenes;
2 makes them twice as large (the network runs at half that size, which is also faster),
0.5 half as large. The result is brought back to the frame's size by the engine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Training crops are cut from pictures whose short side is this many times the crop
# (Johnson et al. resized COCO to 256 and cropped 256; we keep a margin so crops move).
TRAINING_SCENE_FACTOR = 1.25
# What a network that does not say how it was trained is taken to have seen: Johnson et
# al.'s 256-px crops, the size fast-style-transfer networks (ours included) train at.
DEFAULT_TRAINED_SIZE = 256
# Bounds on the working resolution: below this the network has nothing left to paint
# (two stride-2 stages of a 32-px input leave 8x8 features); above, memory runs out
# before the picture improves (a 4096-px frame is already 16 Mpx of activations x 128).
MIN_WORKING_SIDE = 32
MAX_WORKING_SIDE = 4096


def working_size(height: int, width: int, style_scale: float,
                 trained_size: int = DEFAULT_TRAINED_SIZE) -> tuple[int, int]:
    """(height, width) the network should run at for a `height x width` frame, aspect
    kept; see the module docstring. Raises ValueError for a non-positive scale."""
    if not style_scale > 0:
        raise ValueError(f"style scale must be positive, got {style_scale}")
    short = trained_size * TRAINING_SCENE_FACTOR / style_scale
    factor = short / min(height, width)
    factor = max(factor, MIN_WORKING_SIDE / min(height, width))
    factor = min(factor, MAX_WORKING_SIDE / max(height, width))
    return max(1, round(height * factor)), max(1, round(width * factor))


def resize_to_working(x: torch.Tensor, style_scale: float,
                      trained_size: int = DEFAULT_TRAINED_SIZE) -> torch.Tensor:
    """`x` (``N x C x H x W`` float) at the working size for `style_scale`: antialiased
    when shrinking, bicubic when enlarging, unchanged when already there."""
    height, width = x.shape[-2:]
    size = working_size(height, width, style_scale, trained_size)
    if size == (height, width):
        return x
    if size[0] < height:
        return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


def trained_size_of(network: torch.nn.Module) -> int:
    """The crop size `network` was trained at (its ``trained_size`` attribute, set by the
    loader from the file's ``size`` metadata), else `DEFAULT_TRAINED_SIZE`."""
    return int(getattr(network, "trained_size", None) or DEFAULT_TRAINED_SIZE)


def default_style_scale(network: torch.nn.Module) -> float | None:
    """The style scale a network runs at when the user sets none: the one that puts its
    working short side at the network's ``working_side`` attribute (fitted styles: their
    brush strokes keep one size relative to the frame, 480p or 4K), or None (the frame's
    own size) for a network without one."""
    side = getattr(network, "working_side", None)
    if side is None:
        return None
    return trained_size_of(network) * TRAINING_SCENE_FACTOR / side
