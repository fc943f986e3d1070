"""Johnson et al. 2016, "Perceptual Losses for Real-Time Style Transfer": one network per style.

Layout (with instance norm, Ulyanov et al. 2016, instead of the paper's batch norm):
9x9 conv -> two stride-2 3x3 convs -> five residual blocks -> two (nearest upsample x2,
3x3 conv) -> 9x9 conv. Every convolution reflect-pads by half its kernel, so the border
shows no dark frame.

Layer names follow pytorch/examples `fast_neural_style` (``conv1.conv2d.weight``,
``in1.weight``, ``res1.conv1.conv2d.weight``, ``deconv1.conv2d.weight`` ...), so the
``.pth`` checkpoints people already have (candy, mosaic, udnie, rain_princess) load as
they are, after `clean_state_dict`. That network works on pixel values in [0, 255]; this
module keeps the vidstyle interface ([0, 1] in and out) and scales at the edges.

The other two families extend this one: Dumoulin et al. (`conditional.py`) make the
instance-norm scale and shift depend on the style; Ghiasi et al. (`arbitrary.py`) predict
them from a painting. They reuse `ReflectConv` and `UpsampleConv` from here.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.networks.norm import InstanceNorm

# The examples' network was trained on images scaled to [0, 255].
PIXEL_SCALE = 255.0

# InstanceNorm2d kept running statistics by default before PyTorch 0.4; checkpoints saved
# then carry them. Instance norm never uses them at inference, so they are dropped.
_STALE_KEY = re.compile(r"(^|\.)in\d+\.(running_mean|running_var|num_batches_tracked)$")
# Some re-exports name the convolution `conv` instead of `conv2d`.
_SHORT_CONV_KEY = re.compile(r"\.conv\.(weight|bias)$")


class ReflectConv(nn.Module):
    """Reflect-pad by kernel // 2, then convolve: same size out (or halved, stride 2)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.pad = kernel_size // 2
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(F.pad(x, (self.pad,) * 4, mode="reflect"))


class UpsampleConv(ReflectConv):
    """Nearest-neighbour x2, then a reflect-padded conv: no checkerboard, unlike a
    transposed convolution (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResidualBlock(nn.Module):
    """conv-norm-relu-conv-norm, plus the input (He et al. 2016; Johnson's variant)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ReflectConv(channels, channels, 3)
        self.in1 = InstanceNorm(channels)
        self.conv2 = ReflectConv(channels, channels, 3)
        self.in2 = InstanceNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class JohnsonNet(nn.Module):
    """The transform network; ``N x 3 x H x W`` in [0, 1] -> same (H, W multiples of 4)."""

    size_multiple = 4  # two stride-2 convolutions, undone by two x2 upsamplings
    # Wide enough (32-128 channels) to be compute-bound: bf16 autocast ran 2x fp32 on an
    # AVX512-BF16 CPU (see `vidstyle.api.cpu_auto_precision`).
    bf16_pays_on_cpu = True

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = ReflectConv(3, 32, 9)
        self.in1 = InstanceNorm(32)
        self.conv2 = ReflectConv(32, 64, 3, stride=2)
        self.in2 = InstanceNorm(64)
        self.conv3 = ReflectConv(64, 128, 3, stride=2)
        self.in3 = InstanceNorm(128)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConv(128, 64, 3)
        self.in4 = InstanceNorm(64)
        self.deconv2 = UpsampleConv(64, 32, 3)
        self.in5 = InstanceNorm(32)
        self.deconv3 = ReflectConv(32, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * PIXEL_SCALE
        y = F.relu(self.in1(self.conv1(y)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return (self.deconv3(y) / PIXEL_SCALE).clamp(0.0, 1.0)


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A pytorch/examples checkpoint as `JohnsonNet` expects it: stale instance-norm
    statistics dropped, ``.conv.`` spelled ``.conv2d.``, tensors as float32."""
    cleaned = {}
    for key, value in state.items():
        key = key.removeprefix("module.")  # saved from nn.DataParallel
        if _STALE_KEY.search(key):
            continue
        cleaned[_SHORT_CONV_KEY.sub(r".conv2d.\1", key)] = value.float()
    return cleaned


class WeightedOutputs(nn.Module):
    """A blend of separately trained networks: the weighted mean of their outputs.

    Johnson networks share no style space to interpolate in, so a blend of two is the
    mix of their pictures (each network runs on every frame: cost grows with the count).
    """

    def __init__(self, networks: list[nn.Module], weights: list[float]) -> None:
        super().__init__()
        if len(networks) != len(weights) or not networks or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("need one non-negative weight per network, not all zero")
        self.networks = nn.ModuleList(networks)
        total = float(sum(weights))
        self.weights = [w / total for w in weights]
        self.size_multiple = math.lcm(*(int(getattr(n, "size_multiple", 1)) for n in networks))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(w * net(x).float() for w, net in zip(self.weights, self.networks, strict=True))
