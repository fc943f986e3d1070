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
from collections.abc import Callable

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
    transposed convolution (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts").

    Computed without building the upsampled image. Each of the four output phases (even or
    odd row, even or odd column) of a 3x3 conv over a nearest-upsampled image sees only a
    2x2 window of the small image, whose taps are sums of the 3x3 taps; and reflect-padding
    the upsampled image by one pixel is replicate-padding the small one. So one 2x2 conv
    with four times the output channels, on the small image, gives all four phases, which
    are then interleaved. Same result up to float rounding, 2.25x fewer multiply-adds, and
    no 4x-sized intermediate: measured on this repo's CPU, Johnson's network at 640x360 in
    bf16 went from 0.85 to 0.41-0.74 s a frame.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv2d.kernel_size != (3, 3) or self.conv2d.stride != (1, 1):
            return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        bias = self.conv2d.bias
        phases = F.conv2d(replicate_pad_one(x), phase_kernels(self.conv2d.weight),
                          None if bias is None else bias.repeat(4))
        return interleave_phases(phases, x.shape[2], x.shape[3])


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """``C_out x C_in x 3 x 3`` -> ``4 C_out x C_in x 2 x 2``, phases (row, column) in the
    order (0, 0), (0, 1), (1, 0), (1, 1).

    An even output row 2i reads upsampled rows 2i-1, 2i, 2i+1 = small rows i-1, i, i: taps
    (k0, k1 + k2) on rows (i-1, i). An odd row reads small rows i, i, i+1: taps
    (k0 + k1, k2) on rows (i, i+1). Columns likewise.
    """
    k0, k1, k2 = weight[:, :, 0], weight[:, :, 1], weight[:, :, 2]
    row_phases = (torch.stack([k0, k1 + k2], 2), torch.stack([k0 + k1, k2], 2))
    kernels = []
    for rows in row_phases:
        c0, c1, c2 = rows[..., 0], rows[..., 1], rows[..., 2]
        kernels += [torch.stack([c0, c1 + c2], 3), torch.stack([c0 + c1, c2], 3)]
    return torch.cat(kernels, 0)


def replicate_pad_one(x: torch.Tensor) -> torch.Tensor:
    # Slices and cat: F.pad(mode="replicate") copied channels-last tensors to NCHW and back.
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], 2)
    return torch.cat([x[:, :, :, :1], x, x[:, :, :, -1:]], 3)


def interleave_phases(phases: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``N x 4C x (H+1) x (W+1)`` phase maps -> ``N x C x 2H x 2W``.

    Phase (a, b) at small pixel (i, j) is output pixel (2i + a, 2j + b); the 2x2 conv ran
    on the padded image, so its window for row phase a starts a rows further down.
    """
    n, channels = phases.shape[0], phases.shape[1] // 4
    groups = [(a, b, slice((2 * a + b) * channels, (2 * a + b + 1) * channels))
              for a in range(2) for b in range(2)]
    if phases.is_contiguous(memory_format=torch.channels_last):
        # Work on the NHWC view so the one copy is sequential in memory.
        nhwc = phases.permute(0, 2, 3, 1)
        parts = [nhwc[:, a:a + height, b:b + width, group] for a, b, group in groups]
        grid = torch.stack(parts, 3).reshape(n, height, width, 2, 2, channels)
        out = grid.permute(0, 1, 3, 2, 4, 5).reshape(n, 2 * height, 2 * width, channels)
        return out.permute(0, 3, 1, 2)
    parts = [phases[:, group, a:a + height, b:b + width] for a, b, group in groups]
    grid = torch.stack(parts, 2).reshape(n, channels, 2, 2, height, width)
    return grid.permute(0, 1, 4, 2, 5, 3).reshape(n, channels, 2 * height, 2 * width)


# ``normalize(norm_layer, y)``: how `JohnsonNet.transform` applies each instance norm.
Normalize = Callable[[InstanceNorm, torch.Tensor], torch.Tensor]


def own_statistics(norm: InstanceNorm, y: torch.Tensor) -> torch.Tensor:
    """Instance norm as trained: the statistics of `y` itself."""
    return norm(y)


class ResidualBlock(nn.Module):
    """conv-norm-relu-conv-norm, plus the input (He et al. 2016; Johnson's variant)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ReflectConv(channels, channels, 3)
        self.in1 = InstanceNorm(channels)
        self.conv2 = ReflectConv(channels, channels, 3)
        self.in2 = InstanceNorm(channels)

    def forward(self, x: torch.Tensor, normalize: Normalize | None = None) -> torch.Tensor:
        normalize = normalize or own_statistics
        y = F.relu(normalize(self.in1, self.conv1(x)))
        return x + normalize(self.in2, self.conv2(y))


class JohnsonNet(nn.Module):
    """The transform network; ``N x 3 x H x W`` in [0, 1] -> same (H, W multiples of 4)."""

    size_multiple = 4  # two stride-2 convolutions, undone by two x2 upsamplings

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
        return self.transform(x, own_statistics)

    def transform(self, x: torch.Tensor, normalize: Normalize) -> torch.Tensor:
        """The network with each instance norm done by ``normalize(norm_layer, y)``: the
        frame's own statistics (`forward`), or given ones (`vidstyle.networks.tiles`)."""
        y = x * PIXEL_SCALE
        y = F.relu(normalize(self.in1, self.conv1(y)))
        y = F.relu(normalize(self.in2, self.conv2(y)))
        y = F.relu(normalize(self.in3, self.conv3(y)))
        for block in (self.res1, self.res2, self.res3, self.res4, self.res5):
            y = block(y, normalize)
        y = F.relu(normalize(self.in4, self.deconv1(y)))
        y = F.relu(normalize(self.in5, self.deconv2(y)))
        return (self.deconv3(y) / PIXEL_SCALE).clamp(0.0, 1.0)

    def norm_layers(self) -> list[InstanceNorm]:
        """The instance norms in the order `transform` calls them."""
        blocks = (self.res1, self.res2, self.res3, self.res4, self.res5)
        return [self.in1, self.in2, self.in3, *(n for b in blocks for n in (b.in1, b.in2)),
                self.in4, self.in5]


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
