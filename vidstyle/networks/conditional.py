"""Dumoulin et al. 2017, "A Learned Representation for Artistic Style": 26 styles in one net.

Every style shares the convolutions; a style is only its own instance-norm scale and shift
per layer ("conditional instance normalization", eq. 5). A weighted sum of those per-style
parameters blends styles, which is what `style_weights` (26 non-negative weights summing to
one) selects; the weights are bound to the module, so `forward` takes frames only.

Layout of the Magenta model this port reproduces (read from its ONNX graph): a 9x9 conv and
two stride-2 3x3 convs (32 channels), six residual blocks, two (nearest x2 upsample, 3x3
conv) with 8 and 4 channels, a 9x9 conv to RGB; conditional instance norm after every conv
(convs carry no bias: the norm's shift takes its place), ReLU except in the residual
branch's second half, a sigmoid at the end. Input and output are RGB in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.networks.johnson import ReflectConv, UpsampleConv
from vidstyle.networks.norm import modulated_instance_norm

NUM_STYLES = 26
# Where a style's own parameters live in the state dict: every norm's scale and shift.
STYLE_PARAMETER_SUFFIXES = (".norm.scale", ".norm.shift")


class ConditionalInstanceNorm(nn.Module):
    """One (scale, shift) pair per style; a style mix uses their weighted sum."""

    def __init__(self, channels: int, num_styles: int = NUM_STYLES) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(num_styles, channels))
        self.shift = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        # Elementwise products, not a matmul: autocast would round the mix to bf16.
        weights = style_weights.float().reshape(-1, 1)
        scale = (weights * self.scale.float()).sum(0)
        shift = (weights * self.shift.float()).sum(0)
        return modulated_instance_norm(x, scale, shift)


class ConvNorm(nn.Module):
    """Reflect-padded conv (optionally after a x2 upsample), then conditional norm."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
        upsample: bool = False, num_styles: int = NUM_STYLES,
    ) -> None:
        super().__init__()
        conv = UpsampleConv if upsample else ReflectConv
        self.conv = conv(in_channels, out_channels, kernel_size, stride, bias=False)
        self.norm = ConditionalInstanceNorm(out_channels, num_styles)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x), style_weights)


class ConditionalResidual(nn.Module):
    def __init__(self, channels: int, num_styles: int = NUM_STYLES) -> None:
        super().__init__()
        self.first = ConvNorm(channels, channels, 3, num_styles=num_styles)
        self.second = ConvNorm(channels, channels, 3, num_styles=num_styles)

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        return x + self.second(F.relu(self.first(x, style_weights)), style_weights)


class MultiStyleNet(nn.Module):
    """The 26-style network with its style mix bound (`set_style_weights`)."""

    size_multiple = 4  # two stride-2 convolutions, undone by two x2 upsamplings

    def __init__(self, num_styles: int = NUM_STYLES, residual_blocks: int = 6) -> None:
        super().__init__()
        self.num_styles = num_styles
        n = num_styles
        self.contract = nn.ModuleList(
            [ConvNorm(3, 32, 9, num_styles=n), ConvNorm(32, 32, 3, stride=2, num_styles=n),
             ConvNorm(32, 32, 3, stride=2, num_styles=n)]
        )
        self.residual = nn.ModuleList(ConditionalResidual(32, n) for _ in range(residual_blocks))
        self.expand = nn.ModuleList(
            [ConvNorm(32, 8, 3, upsample=True, num_styles=n),
             ConvNorm(8, 4, 3, upsample=True, num_styles=n), ConvNorm(4, 3, 9, num_styles=n)]
        )
        self.register_buffer("style_weights", one_hot_style(0, num_styles))

    def set_style_weights(self, weights: torch.Tensor) -> MultiStyleNet:
        """Bind a style mix: `num_styles` non-negative weights, normalised here to sum 1."""
        weights = torch.as_tensor(weights, dtype=torch.float32).flatten()
        if weights.numel() != self.num_styles or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"need {self.num_styles} non-negative weights, not all zero")
        self.style_weights.copy_(weights / weights.sum())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.style_weights.float()
        y = x
        for layer in self.contract:
            y = F.relu(layer(y, weights))
        for block in self.residual:
            y = block(y, weights)
        for layer in self.expand[:-1]:
            y = F.relu(layer(y, weights))
        return torch.sigmoid(self.expand[-1](y, weights))


def one_hot_style(index: int, num_styles: int = NUM_STYLES) -> torch.Tensor:
    weights = torch.zeros(num_styles)
    weights[index] = 1.0
    return weights


def is_style_parameter(name: str) -> bool:
    """True for a style's own parameters (a norm's per-style scale or shift rows)."""
    return name.endswith(STYLE_PARAMETER_SUFFIXES)


def style_rows(network: MultiStyleNet, index: int) -> dict[str, torch.Tensor]:
    """Style `index`'s own parameters: ``{state-dict key: C-vector}``, detached copies."""
    return {name: value[index].detach().clone()
            for name, value in network.state_dict().items() if is_style_parameter(name)}


def with_styles(network: MultiStyleNet, extra: list[dict[str, torch.Tensor]]) -> MultiStyleNet:
    """A copy of `network` with the styles in `extra` appended as rows after its own.

    Each style is ``{state-dict key: C-vector}`` for every norm (as `style_rows` gives it):
    a new painting fitted onto the shared convolutions (Dumoulin et al. 2017, sec. 3.4) runs,
    and blends, exactly like the built-in presets.
    """
    grown = MultiStyleNet(num_styles=network.num_styles + len(extra),
                          residual_blocks=len(network.residual))
    state = {}
    for name, value in network.state_dict().items():
        if is_style_parameter(name):
            rows = [style[name].to(value).reshape(1, -1) for style in extra]
            value = torch.cat([value, *rows])
        elif name == "style_weights":
            value = one_hot_style(0, grown.num_styles)
        state[name] = value
    grown.load_state_dict(state)
    return grown
