"""The user's own styles: one safetensors file per name in the user's data folder.

A user style is a fitted style (`vidstyle train`: norm rows for the shipped arbitrary-style
network, kept with its base network's name and checksum), a Johnson network (imported
from a pytorch/examples `.pth` or a safetensors state dict), or a painting's style vector
for the arbitrary network, stored with the painting itself (long side at most
`KEPT_PICTURE_SIZE`) so that the gatys engine and evaluation can take its Gram statistics.
Each is stored as ``NAME.safetensors`` whose metadata says which (`family`) and where it
came from (`source`), so the folder is the whole registry.

Folder: ``$VIDSTYLE_STYLES``, else ``$XDG_DATA_HOME/vidstyle/styles``, else
``~/.local/share/vidstyle/styles``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from vidstyle.errors import StyleError, WeightsError
from vidstyle.images import fit_long_side, resize_image
from vidstyle.styles.catalogue import StyleInfo, load_catalogue
from vidstyle.styles.fitted import FAMILY as FITTED_FAMILY
from vidstyle.styles.fitted import (
    is_fitted_style_file,
    read_fitted_style,
    write_fitted_style,
)
from vidstyle.styles.paintings import is_image_path, read_style_pixels, style_vector_for_image
from vidstyle.styles.weights import read_johnson_weights, read_safetensors, write_safetensors

# The gatys engine's style size is 512 px by default; twice that leaves room for larger
# style sizes (bigger strokes) at about 3 MB a style.
KEPT_PICTURE_SIZE = 1024
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
WEIGHTS_SUFFIXES = {".pth", ".pt", ".safetensors"}


def user_styles_dir() -> Path:
    if os.environ.get("VIDSTYLE_STYLES"):
        return Path(os.environ["VIDSTYLE_STYLES"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "vidstyle" / "styles"


def user_style_path(name: str) -> Path:
    return user_styles_dir() / f"{name}.safetensors"


def check_new_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise StyleError(
            f"{name!r}: a style name is lower-case letters, digits, '_' or '-' (at most 64)"
        )
    if name in load_catalogue().styles or name == "preset":
        raise StyleError(f"{name!r}: that name belongs to a built-in style; pick another")


def add_user_style(name: str, file: str | Path, *, overwrite: bool = False) -> StyleInfo:
    """Store `file` (a Johnson `.pth`/`.safetensors`, or a painting) as style `name`."""
    check_new_name(name)
    file = Path(file)
    destination = user_style_path(name)
    if destination.exists() and not overwrite:
        raise StyleError(f"{name!r}: a user style of that name exists; remove it first")
    if file.suffix.lower() == ".safetensors" and is_fitted_style_file(file):
        fitted = read_fitted_style(file)  # refuses one fitted to another base network
        write_fitted_style(destination, fitted.rows, fitted.metadata | {"source": file.name},
                           fitted.base)
        return StyleInfo(name, FITTED_FAMILY, file.name, fitted.metadata.get("licence", ""),
                         "user", base=fitted.base)
    if file.suffix.lower() in WEIGHTS_SUFFIXES:
        tensors, family = read_johnson_weights(file), "johnson"
    elif is_image_path(str(file)):
        tensors, family = {"style": style_vector_for_image(file), "picture": kept_picture(file)}, (
            "arbitrary")
    else:
        raise StyleError(
            f"{file}: not a style file (use a .pth/.safetensors Johnson network or an image)"
        )
    metadata = {"family": family, "source": file.name, "licence": "user-supplied"}
    write_safetensors(destination, tensors, metadata)
    return StyleInfo(name, family, file.name, "user-supplied", "user")


def kept_picture(file: Path) -> torch.Tensor:
    """The painting as stored with its style: RGB uint8 ``H x W x 3``, long side at most
    `KEPT_PICTURE_SIZE`."""
    pixels = read_style_pixels(file)
    shape = fit_long_side(*pixels.shape[:2], KEPT_PICTURE_SIZE)
    return torch.from_numpy(resize_image(pixels, shape).copy())


def remove_user_style(name: str) -> Path:
    path = user_style_path(name)
    if not NAME_PATTERN.fullmatch(name) or not path.is_file():
        raise StyleError(f"{name!r}: no such user style in {user_styles_dir()}")
    path.unlink()
    return path


def list_user_styles() -> list[StyleInfo]:
    folder = user_styles_dir()
    if not folder.is_dir():
        return []
    infos = []
    for path in sorted(folder.glob("*.safetensors")):
        try:
            _, metadata = read_safetensors(path)
        except WeightsError:
            metadata = {"family": "?", "source": "unreadable file"}
        infos.append(StyleInfo(path.stem, metadata.get("family", "?"),
                               metadata.get("source", ""), metadata.get("licence", ""), "user",
                               base=metadata.get("base")))
    return infos


def load_user_style(name: str) -> tuple[str, dict[str, torch.Tensor], Path] | None:
    """(family, tensors, path) of user style `name`, or None if there is none."""
    path = user_style_path(name)
    if not NAME_PATTERN.fullmatch(name) or not path.is_file():
        return None
    tensors, metadata = read_safetensors(path)
    family = metadata.get("family")
    if family not in ("johnson", "arbitrary"):
        raise WeightsError(path, "not a vidstyle user style (no 'family' in its metadata)")
    return family, {k: v.float() for k, v in tensors.items()}, path
