"""Instance normalization, fused: the one layer all three network families share.

`nn.InstanceNorm2d` runs through batch norm on an ``1 x (N*C) x H x W`` reshape, which on a
CPU costs two extra full copies of the activation per call. Measured on this repo's
2-core machine, Johnson's network at 640x360 under bf16 autocast spent about half its time
there; one `var_mean` plus one fused multiply-add halved the whole frame (1.78 -> 0.89 s,
max difference 2.4e-4). Statistics are taken in float32 even under autocast: a bf16 mean
over a whole 640x360 plane loses the small differences that normalization then magnifies.
"""

from __future__ import annotations

import torch
from torch import nn

# PyTorch's InstanceNorm2d default; the Magenta graphs use the same constant.
NORM_EPSILON = 1e-5


def modulated_instance_norm(
    x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float = NORM_EPSILON
) -> torch.Tensor:
    """Instance norm whose scale and shift (``N x C`` or ``C``) come from outside."""
    x32 = x.float()
    var, mean = torch.var_mean(x32, dim=(2, 3), keepdim=True, correction=0)
    scale = scale.float().reshape(-1, x.shape[1], 1, 1)
    shift = shift.float().reshape(-1, x.shape[1], 1, 1)
    gain = scale * torch.rsqrt(var + eps)
    return (x32 * gain + (shift - mean * gain)).to(x.dtype)


class InstanceNorm(nn.InstanceNorm2d):
    """Drop-in `nn.InstanceNorm2d(affine=True)`: same parameters and state-dict keys
    (``weight``, ``bias``), so existing checkpoints load; the fused computation above."""

    def __init__(self, channels: int, eps: float = NORM_EPSILON) -> None:
        super().__init__(channels, eps=eps, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return modulated_instance_norm(x, self.weight, self.bias, self.eps)
