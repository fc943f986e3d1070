"""The built-in style table (`catalogue.toml`) and the shipped networks it points to."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from vidstyle.errors import WeightsError
from vidstyle.styles.weights import WEIGHTS_DIR, dequantize_int8, read_safetensors

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CATALOGUE_FILE = Path(__file__).with_name("catalogue.toml")

# What `styles list` shows in its "network" column, per family.
FAMILY_LABELS = {
    "johnson": "johnson (one net per style)",
    "conditional": "multistyle26 (26 presets)",
    "arbitrary": "arbitrary (style vector)",
}


@dataclass(frozen=True)
class StyleInfo:
    """One style as `list_styles()` reports it."""

    name: str
    family: str  # johnson | conditional | arbitrary
    source: str  # what the style is (painting, preset description, file it came from)
    licence: str
    origin: str  # built-in | user
    preset: int | None = None
    base: str | None = None  # the network a fitted style's norm rows belong to

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "network": self.family, "source": self.source,
            "licence": self.licence, "origin": self.origin, "preset": self.preset,
            "base": self.base,
        }


@dataclass(frozen=True)
class NetworkEntry:
    name: str
    family: str
    files: dict[str, tuple[str, str]]  # role -> (file name, sha256)
    source: str
    licence: str
    package: str | None = None  # files live in this installed package, not vidstyle/weights
    trained_size: int | None = None  # training crop size (engines/scale.py), if known


@dataclass(frozen=True)
class StyleEntry:
    name: str
    network: str
    description: str
    licence: str
    preset: int | None = None
    vector: str | None = None
    painting: str | None = None
    norms: tuple[str, str] | None = None  # a fitted style's norm rows: (file name, sha256)


@dataclass(frozen=True)
class Catalogue:
    networks: dict[str, NetworkEntry]
    styles: dict[str, StyleEntry]
    paintings: dict[str, tuple[str, str]]  # painting -> (Gram file name, sha256)

    def preset_names(self) -> dict[int, str]:
        return {s.preset: s.name for s in self.styles.values() if s.preset is not None}

    def info(self, name: str) -> StyleInfo:
        style = self.styles[name]
        network = self.networks[style.network]
        own_licence = (style.vector is not None or style.norms is not None
                       or network.family == "johnson")
        licence = f"{style.licence}; weights {network.licence}" if own_licence else network.licence
        return StyleInfo(name, network.family, style.description, licence, "built-in",
                         style.preset, network.name if style.norms else None)


@functools.lru_cache(maxsize=1)
def load_catalogue(path: Path = CATALOGUE_FILE) -> Catalogue:
    with open(path, "rb") as file:
        data = tomllib.load(file)
    networks = {
        name: NetworkEntry(
            name, entry["family"],
            {role: (f["file"], f["sha256"]) for role, f in entry["files"].items()},
            entry["source"], entry["licence"], entry.get("package"),
            entry.get("trained_size"),
        )
        for name, entry in data["networks"].items()
    }
    styles = {
        name: StyleEntry(
            name, entry["network"], entry.get("description", ""), entry.get("licence", ""),
            entry.get("preset"), entry.get("vector"), entry.get("painting"),
            (entry["norms"]["file"], entry["norms"]["sha256"]) if "norms" in entry else None,
        )
        for name, entry in data["styles"].items()
    }
    paintings = {
        name: (entry["grams"]["file"], entry["grams"]["sha256"])
        for name, entry in data.get("paintings", {}).items()
    }
    return Catalogue(networks, styles, paintings)


@functools.lru_cache(maxsize=8)
def shipped_tensors(network: str, role: str) -> dict[str, torch.Tensor]:
    """The float32 tensors of one shipped file, checksum-verified, read once per process."""
    entry = load_catalogue().networks[network]
    file_name, sha256 = entry.files[role]
    tensors, _ = read_safetensors(WEIGHTS_DIR / file_name, sha256=sha256)
    return dequantize_int8(tensors)


def shipped_vector(name: str) -> torch.Tensor:
    vectors = shipped_tensors("arbitrary", "vectors")
    if name not in vectors:
        path = WEIGHTS_DIR / load_catalogue().networks["arbitrary"].files["vectors"][0]
        raise WeightsError(path, f"holds no style vector {name!r}")
    return vectors[name]
