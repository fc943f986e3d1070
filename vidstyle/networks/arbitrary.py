"""Ghiasi et al. 2017, "Exploring the structure of a real-time, arbitrary neural artistic
stylization network": any painting becomes a style.

Two networks (layouts read from the Magenta models' int8 TFLite graphs, as ONNX):

* `StylePredictor`: MobileNetV2 (Sandler et al. 2018) over the painting (256x256 RGB in
  [0, 1]), global average pool, a 1x1 conv to the 100-number style vector.
* `ArbitraryTransformer`: a slim Johnson-style network (8/16/32 channels, five residual
  blocks) whose instance norms after the residual and upsampling convs take their scale
  and shift from the style vector through one linear map each (the paper's eq. 4). The
  first three convolutions carry their (folded) batch norm as a bias.

The released graph fixed the transformer at 384x384; this one is fully convolutional and
runs at the frame's own size (H and W multiples of `size_multiple`).

`ArbitraryStylizer` binds a style (a vector, or fitted norm rows) and optionally a strength
to the transformer so the module honours the plain network interface.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.networks.johnson import ReflectConv, UpsampleConv
from vidstyle.networks.norm import modulated_instance_norm

STYLE_DIM = 100
# A style in norm space: "<norm's path>.scale" / ".shift" -> N x C rows (see the transformer).
NormRows = dict[str, torch.Tensor]
# The predictor was trained on (and the released graph fixes) 256x256 style images.
STYLE_IMAGE_SIZE = 256

# MobileNetV2 inverted-residual stages after the stem (Sandler et al. 2018, table 2):
# (expansion, output channels, repeats, first stride).
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


# --- style prediction: MobileNetV2 -------------------------------------------------------


class SameConv(nn.Conv2d):
    """A conv padded like TensorFlow's "SAME": zeros, the odd pixel at the bottom/right.

    The weights were trained that way; symmetric padding would shift every stride-2 layer.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
            strict=True,
        ):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear projection (+ input)."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int, stride: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = nn.Conv2d(in_channels, hidden, 1) if expansion != 1 else None
        self.depthwise = SameConv(hidden, hidden, 3, stride, groups=hidden)
        self.project = nn.Conv2d(hidden, out_channels, 1)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.expand(x)) if self.expand is not None else x
        y = self.project(F.relu6(self.depthwise(y)))
        return x + y if self.residual else y


class StylePredictor(nn.Module):
    """Painting (``N x 3 x H x W`` in [0, 1], best 256x256) -> ``N x 100`` style vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv(3, 32, 3, stride=2)
        blocks, channels = [], 32
        for expansion, out_channels, repeats, stride in MOBILENET_V2_STAGES:
            for i in range(repeats):
                blocks.append(
                    InvertedResidual(channels, out_channels, expansion, stride if i == 0 else 1)
                )
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(channels, 1280, 1)
        self.bottleneck = nn.Linear(1280, STYLE_DIM)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # The graph's [0, 1] -> [-1, 1] input scaling is folded into the stem's weights.
        y = F.relu6(self.stem(image))
        y = F.relu6(self.head(self.blocks(y)))
        return self.bottleneck(y.mean(dim=(2, 3)))


def prepare_style_image(image: torch.Tensor, size: int = STYLE_IMAGE_SIZE) -> torch.Tensor:
    """Centre square crop, then an antialiased resize to the predictor's input size."""
    height, width = image.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[..., top : top + side, left : left + side]
    if side == size:
        return square
    return F.interpolate(
        square.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False
    ).clamp(0.0, 1.0)


# --- the transformer ---------------------------------------------------------------------


class StyleNorm(nn.Module):
    """Instance norm whose scale and shift are linear in the style vector."""

    def __init__(self, channels: int, style_dim: int = STYLE_DIM) -> None:
        super().__init__()
        self.to_scale = nn.Linear(style_dim, channels)
        self.to_shift = nn.Linear(style_dim, channels)
        self.key = ""  # its path in the transformer, set there: how its rows are found

    def rows(self, style: torch.Tensor) -> dict[str, torch.Tensor]:
        """``N x 100`` style vectors -> this norm's ``N x C`` scale and shift rows."""
        # In float32 even under autocast: these 100-wide products are negligible work,
        # and bf16 scales would shift every channel's contrast by up to 0.4%.
        with torch.autocast(style.device.type, enabled=False):
            style = style.float()
            scale = F.linear(style, self.to_scale.weight.float(), self.to_scale.bias.float())
            shift = F.linear(style, self.to_shift.weight.float(), self.to_shift.bias.float())
        return {f"{self.key}.scale": scale, f"{self.key}.shift": shift}

    def forward(self, x: torch.Tensor, rows: NormRows) -> torch.Tensor:
        return modulated_instance_norm(x, rows[f"{self.key}.scale"], rows[f"{self.key}.shift"])


class StyleResidual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ReflectConv(channels, channels, 3)
        self.norm1 = StyleNorm(channels)
        self.conv2 = ReflectConv(channels, channels, 3)
        self.norm2 = StyleNorm(channels)

    def forward(self, x: torch.Tensor, rows: NormRows) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x), rows))
        return x + self.norm2(self.conv2(y), rows)


class ArbitraryTransformer(nn.Module):
    """Content (``N x 3 x H x W`` in [0, 1]) + a style -> stylized.

    A style is either ``N x 100`` style vectors or, in norm space, the scale and shift of
    every instance norm (`NormRows`, as `style_rows` makes them from vectors). Norm space
    holds every vector's style and more: a painting fitted there (`vidstyle train`) sets
    each norm's rows directly, and a weighted sum of rows blends styles exactly as the
    same sum of vectors would (the maps are affine and the weights sum to one).
    """

    size_multiple = 4  # two stride-2 convolutions, undone by two x2 upsamplings

    def __init__(self, residual_blocks: int = 5) -> None:
        super().__init__()
        self.contract = nn.ModuleList(
            [ReflectConv(3, 8, 9), ReflectConv(8, 16, 3, stride=2),
             ReflectConv(16, 32, 3, stride=2)]
        )
        self.residual = nn.ModuleList(StyleResidual(32) for _ in range(residual_blocks))
        self.expand = nn.ModuleList(
            [UpsampleConv(32, 16, 3), UpsampleConv(16, 8, 3), ReflectConv(8, 3, 9)]
        )
        self.expand_norms = nn.ModuleList([StyleNorm(16), StyleNorm(8), StyleNorm(3)])
        for name, module in self.named_modules():
            if isinstance(module, StyleNorm):
                module.key = name

    def norms(self) -> list[StyleNorm]:
        return [m for m in self.modules() if isinstance(m, StyleNorm)]

    def style_rows(self, style: torch.Tensor) -> NormRows:
        """``N x 100`` style vectors -> every norm's ``N x C`` scale and shift rows."""
        rows: NormRows = {}
        for norm in self.norms():
            rows |= norm.rows(style)
        return rows

    def forward(self, content: torch.Tensor, style: torch.Tensor | NormRows) -> torch.Tensor:
        rows = self.style_rows(style) if isinstance(style, torch.Tensor) else style
        y = content
        for conv in self.contract:
            y = F.relu(conv(y))
        for block in self.residual:
            y = block(y, rows)
        for conv, norm in zip(self.expand[:-1], self.expand_norms[:-1], strict=True):
            y = F.relu(norm(conv(y), rows))
        return torch.sigmoid(self.expand_norms[-1](self.expand[-1](y), rows))


def mix_rows(parts: list[tuple[NormRows, float]]) -> NormRows:
    """The weighted sum of several styles' rows (weights summing to one: a blend)."""
    keys = parts[0][0].keys()
    return {key: sum(weight * rows[key].float() for rows, weight in parts) for key in keys}


class ArbitraryStylizer(nn.Module):
    """The transformer with a style bound (its norm rows): the plain network interface.

    With ``strength < 1`` and a predictor, each frame's style is pulled toward the frame's
    own: ``s * style + (1 - s) * predict(frame)``, in norm space (Ghiasi et al. 2017, sec.
    5.2, there with vectors). Interpolating styles keeps the brush-stroke character, where a
    pixel blend would show a ghost of the original photo.
    """

    def __init__(
        self,
        transformer: ArbitraryTransformer,
        style: torch.Tensor | NormRows,
        *,
        strength: float = 1.0,
        predictor: StylePredictor | None = None,
    ) -> None:
        super().__init__()
        if strength < 1.0 and predictor is None:
            raise ValueError("strength below 1 needs the style predictor")
        self.transformer = transformer
        self.predictor = predictor if strength < 1.0 else None
        self.strength = float(strength)
        if isinstance(style, torch.Tensor):
            with torch.no_grad():
                style = transformer.style_rows(style.detach().float().reshape(1, STYLE_DIM))
        self.keys = sorted(style)
        for index, key in enumerate(self.keys):
            # Buffers, so `.to(device)` and compiling carry them; names cannot hold dots.
            self.register_buffer(f"row{index}", style[key].detach().float().reshape(1, -1))
        self.size_multiple = transformer.size_multiple

    def rows(self) -> NormRows:
        """The bound style's rows, ``1 x C`` each."""
        return {key: getattr(self, f"row{index}") for index, key in enumerate(self.keys)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = self.rows()
        if self.predictor is not None:
            # In float32 even under autocast: a 256x256 MobileNet costs little next to the
            # full-frame transformer, and bf16 moved the result by 0.013 on average
            # (measured at 640x360, strength 0.5) against 0.0014 with this.
            with torch.autocast(x.device.type, enabled=False):
                own = self.transformer.style_rows(
                    self.predictor(prepare_style_image(x.float())).float())
            rows = {k: self.strength * v + (1.0 - self.strength) * own[k]
                    for k, v in rows.items()}
        return self.transformer(x, rows)
