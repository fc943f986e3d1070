"""The training objective: Johnson et al.'s perceptual loss (VGG content + Gram style +
total variation), the temporal term on video pairs, and the straight-through clamp that
lets the loss see the picture users get.
"""

from __future__ import annotations

import torch
from torch import nn

from vidstyle.losses import content_loss, gram_matrix, style_grams, style_loss, total_variation
from vidstyle.networks.johnson import PIXEL_SCALE, JohnsonNet
from vidstyle.styles.paintings import read_style_image
from vidstyle.train.data import FramePair
from vidstyle.train.settings import TrainSettings


def straight_through_clamp(image: torch.Tensor) -> torch.Tensor:
    """Values clamped to [0, 1] in the forward pass, identity in the backward pass."""
    return image + (image.clamp(0.0, 1.0) - image).detach()


class UnclampedOutput:
    """Captures `JohnsonNet`'s last convolution, i.e. its output before the clamp."""

    def __init__(self, network: JohnsonNet) -> None:
        self.value: torch.Tensor | None = None
        self.handle = network.deconv3.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        self.value = output / PIXEL_SCALE

    def __call__(self, network: JohnsonNet, images: torch.Tensor) -> torch.Tensor:
        network(images)
        assert self.value is not None
        return straight_through_clamp(self.value)


class PerceptualLoss:
    """Johnson et al.'s loss: VGG content + Gram style + total variation (+ temporal)."""

    def __init__(self, vgg, style_image: torch.Tensor, settings: TrainSettings) -> None:
        self.vgg = vgg
        self.settings = settings
        self.layers = [settings.content_layer, *settings.style_layers]
        with torch.no_grad():
            self.target_grams = style_grams(style_image, vgg, settings.style_layers)

    def __call__(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.vgg.features(output, self.layers)
        return self.terms(output, features, self.content_target(content))

    @torch.no_grad()
    def content_target(self, content: torch.Tensor) -> torch.Tensor:
        """The photos' features at the content layer: one VGG pass that several styles
        trained on the same batch can share (tools/train_named_gpu.py)."""
        layer = self.settings.content_layer
        return self.vgg.features(content, [layer])[layer]

    def terms(self, output: torch.Tensor, features: dict[str, torch.Tensor],
              target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted terms from the output's VGG `features` (at `self.layers`)."""
        s = self.settings
        grams = {layer: gram_matrix(features[layer]) for layer in s.style_layers}
        return {
            "content": s.content_weight * content_loss(features[s.content_layer], target),
            "style": s.style_weight * style_loss(grams, self.target_grams),
            "tv": s.tv_weight * total_variation(output.float()),
        }


def temporal_loss(output_previous: torch.Tensor, output_current: torch.Tensor,
                  pair: FramePair) -> torch.Tensor:
    """Mean squared RGB difference between output t and warped output t-1 on reliable
    pixels (Huang et al. 2017, eq. 4; the mask as in Ruder et al. 2016)."""
    from vidstyle.temporal.flow import warp_backward_tensor

    warped = warp_backward_tensor(output_previous.float(), pair.flow_back)
    mask = torch.from_numpy(pair.mask).to(output_current.device)
    squared = (output_current.float() - warped).pow(2).sum(1)  # N x H x W
    return (squared * mask).sum() / (mask.sum() * squared.shape[0] + 1e-8)



def load_style_image(path, style_size: int) -> torch.Tensor:
    """The painting, scaled so its long side is `style_size`."""
    image = read_style_image(path)
    height, width = image.shape[2:]
    scale = style_size / max(height, width)
    shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    return nn.functional.interpolate(image, size=shape, mode="area" if scale < 1 else "bicubic",
                                     align_corners=None if scale < 1 else False).clamp(0, 1)
