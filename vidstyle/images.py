"""Pictures in memory: RGB uint8 arrays and ``1 x 3 x H x W`` float tensors, and resizing.

One home for the conversions and resizes that the engines, styles, evaluation and
temporal filter all need, so that "the long side to N pixels" means the same everywhere.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(pixels: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB uint8 ``H x W x 3`` (or a batch ``N x H x W x 3``) -> float ``N x 3 x H x W``
    in [0, 1] on `device` (N = 1 for a single picture)."""
    batch = pixels if pixels.ndim == 4 else pixels[None]
    tensor = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2)
    return tensor.to(device).float().div_(255.0)


def to_pixels(image: torch.Tensor) -> np.ndarray:
    """``1 x 3 x H x W`` [0, 1] -> RGB uint8 ``H x W x 3`` numpy array."""
    return image[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def fit_long_side(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(height, width) shrunk so the long side is at most `size`; never enlarged."""
    if not size or max(height, width) <= size:
        return height, width
    return scaled_to_long_side(height, width, size)


def scaled_to_long_side(height: int, width: int, size: int) -> tuple[int, int]:
    """(height, width) scaled (up or down) so the long side is `size`."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize to (height, width): area filter when shrinking (no aliasing), else cubic."""
    if image.shape[:2] == tuple(shape):
        return image
    shrinking = shape[0] * shape[1] < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (shape[1], shape[0]), interpolation=interpolation)


def resize_tensor(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of ``N x C x H x W`` to (height, width), antialiased when shrinking."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", align_corners=False, antialias=True)


def resize_tensor_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize so the long side is `size` (up or down), clamped back to [0, 1]."""
    shape = scaled_to_long_side(*image.shape[-2:], size)
    return resize_tensor(image, shape).clamp(0, 1)


def enlarge_to_min_side(x: torch.Tensor, min_side: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Enlarge each side by a whole factor (nearest) until it reaches `min_side`; return
    the factors, so that average pooling by them gives back the exact size. Per side: a
    1920x2 frame runs at 1920x32, not 30720x32."""
    factors = tuple(math.ceil(min_side / side) for side in x.shape[-2:])
    if factors == (1, 1):
        return x, (1, 1)
    return F.interpolate(x, scale_factor=factors, mode="nearest"), factors
