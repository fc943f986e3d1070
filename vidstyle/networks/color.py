"""What happens after any style network: keep the source's colours, soften the style.

* Colour preservation is luminance-only transfer (Gatys et al. 2016, "Preserving Color in
  Neural Artistic Style Transfer", sec. 2.2): take the stylized image's luminance Y and the
  source's chroma I, Q in the YIQ space, so the painting lends strokes and texture but not
  its palette.
* Strength mixes the result back toward the source in pixel space. (The arbitrary network
  has a better way, interpolating style vectors; `ArbitraryStylizer` does that itself.)
"""

from __future__ import annotations

import torch
from torch import nn

# NTSC RGB -> YIQ (FCC 1953 primaries), and its inverse.
_RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.595716, -0.274453, -0.321263),
               (0.211456, -0.522591, 0.311135))
_YIQ_TO_RGB = ((1.0, 0.9563, 0.6210), (1.0, -0.2721, -0.6474), (1.0, -1.1070, 1.7046))


def _mix_channels(x: torch.Tensor, matrix: tuple[tuple[float, ...], ...]) -> torch.Tensor:
    # Weighted sums written out: a matmul under autocast would round to bf16/fp16.
    r, g, b = x.float().unbind(dim=1)
    return torch.stack([m[0] * r + m[1] * g + m[2] * b for m in matrix], dim=1)


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    return _mix_channels(x, _RGB_TO_YIQ)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return _mix_channels(x, _YIQ_TO_RGB)


def keep_source_colour(styled: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """The stylized luminance with the source's chroma (both ``N x 3 x H x W`` in [0, 1])."""
    luma = rgb_to_yiq(styled)[:, :1]
    chroma = rgb_to_yiq(source)[:, 1:]
    return yiq_to_rgb(torch.cat([luma, chroma], dim=1)).clamp(0.0, 1.0)


def mix_toward_source(styled: torch.Tensor, source: torch.Tensor, strength: float) -> torch.Tensor:
    """``strength * styled + (1 - strength) * source``; strength 1 returns `styled` as is."""
    if strength >= 1.0:
        return styled
    return torch.lerp(source.float(), styled.float(), strength)


class StyleFinish(nn.Module):
    """Wraps a style network: colour preservation, then strength. Same interface."""

    def __init__(
        self, network: nn.Module, *, strength: float = 1.0, preserve_color: bool = False
    ) -> None:
        super().__init__()
        self.network = network
        self.strength = float(strength)
        self.preserve_color = preserve_color
        self.size_multiple = int(getattr(network, "size_multiple", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        styled = self.network(x)
        if self.preserve_color:
            styled = keep_source_colour(styled, x)
        return mix_toward_source(styled, x, self.strength)
