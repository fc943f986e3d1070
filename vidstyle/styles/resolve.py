"""From a style spec to a ready network: names, presets, paintings, files and blends.

A spec is one style or a comma-separated blend of weighted ones:

    scream                      a built-in name (catalogue.toml) or a user style
    preset:3                    the 26-style network's preset 3
    preset:3@multistyle26       preset 3 of a named shipped 26-style network
    preset:3@tuned.safetensors  preset 3 of a 26-style network file in the shipped format
                                (e.g. one `vidstyle stabilize` wrote)
    path/to/painting.jpg        any picture, through the arbitrary network
    path/to/mosaic.pth          a Johnson network file (pytorch/examples or safetensors)
    path/to/mine.safetensors    a fitted style (`vidstyle train`): norm rows for the
                                arbitrary-style network
    scream:0.6,wave:0.4         a blend: weights are normalised to sum 1

Blends stay within one network family, where they mean something: the weighted norm rows
of the arbitrary-style network (the named paintings, fitted there, any painting's predicted
style and every fitted style), weighted conditional-norm parameters (the 26 presets), or
the weighted mean of the pictures (separately trained Johnson networks).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vidstyle.errors import SettingsError, StyleError
from vidstyle.networks.arbitrary import (
    ArbitraryStylizer,
    ArbitraryTransformer,
    NormRows,
    mix_rows,
)
from vidstyle.networks.color import StyleFinish
from vidstyle.networks.conditional import NUM_STYLES, MultiStyleNet
from vidstyle.networks.johnson import JohnsonNet, WeightedOutputs
from vidstyle.styles.catalogue import (
    StyleInfo,
    load_catalogue,
    shipped_tensors,
    shipped_vector,
)
from vidstyle.styles.fitted import WORKING_SIDE, is_fitted_style_file, read_fitted_style
from vidstyle.styles.paintings import is_image_path, load_predictor, style_vector_for_image
from vidstyle.styles.spec import PRESET_PREFIX, parse_spec
from vidstyle.styles.user import (
    WEIGHTS_SUFFIXES,
    list_user_styles,
    load_user_style,
)
from vidstyle.styles.weights import (
    WEIGHTS_DIR,
    load_into,
    read_johnson_weights,
    read_safetensors,
)

# The 26-style network `preset:N` runs unless the spec names another (`preset:N@NETWORK`).
PRESET_NETWORK = "multistyle26_stable"


@dataclass
class Component:
    """One resolved part of a spec."""

    label: str
    family: str  # johnson | conditional | arbitrary
    weight: float
    preset: int | None = None
    vector: torch.Tensor | None = None
    johnson_state: dict[str, torch.Tensor] | None = None
    source: str = ""
    trained_size: int | None = None  # training crop size, for --style-scale
    network_file: Path | str | None = None  # presets: a shipped network's name, or a file
    rows: NormRows | None = None  # a fitted style's own norm rows (arbitrary network)


# --- resolving ---------------------------------------------------------------------------


def resolve_component(name: str, weight: float = 1.0) -> Component:
    catalogue = load_catalogue()
    if name.lower().startswith(PRESET_PREFIX):
        return _preset_component(name, weight)
    if name in catalogue.styles:
        entry = catalogue.styles[name]
        if entry.preset is not None:
            return Component(name, "conditional", weight, preset=entry.preset,
                             source=entry.network, network_file=entry.network)
        if entry.vector is not None:
            return Component(name, "arbitrary", weight, vector=shipped_vector(entry.vector))
        if entry.norms is not None:
            file_name, sha256 = entry.norms
            return _fitted_component(name, weight, WEIGHTS_DIR / file_name, sha256)
        return Component(name, "johnson", weight,
                         johnson_state=shipped_tensors(entry.network, "network"),
                         source=f"built-in {entry.network}",
                         trained_size=catalogue.networks[entry.network].trained_size)
    user = load_user_style(name)
    if user is not None:
        family, tensors, path = user
        if is_fitted_style_file(path):
            return _fitted_component(name, weight, path)
        if family == "arbitrary":
            return Component(name, family, weight, vector=tensors["style"], source=str(path))
        return Component(name, family, weight, johnson_state=tensors, source=str(path))
    return _file_component(name, weight)


def _preset_component(name: str, weight: float) -> Component:
    index, _, network = name[len(PRESET_PREFIX):].partition("@")
    if not index.isdigit() or not 0 <= int(index) < NUM_STYLES:
        raise StyleError(f"{name!r}: presets are preset:0 to preset:{NUM_STYLES - 1}")
    network_file = None
    if network and not _is_preset_network(network):
        network_file = Path(network).expanduser()
        if not network_file.is_file():
            raise StyleError(f"{network_file}: 26-style network file not found")
    return Component(f"preset{int(index)}", "conditional", weight, preset=int(index),
                     source=network or PRESET_NETWORK,
                     network_file=network_file or (network or PRESET_NETWORK))


def _fitted_component(label: str, weight: float, path: Path, sha256: str | None = None,
                      ) -> Component:
    fitted = read_fitted_style(path, sha256=sha256)
    size = fitted.metadata.get("size", "")
    return Component(label, "arbitrary", weight, rows=fitted.rows, source=str(path),
                     trained_size=int(size) if size.isdigit() else None)


def _is_preset_network(name: str) -> bool:
    entry = load_catalogue().networks.get(name)
    return entry is not None and entry.family == "conditional"


def _file_component(name: str, weight: float) -> Component:
    path = Path(name).expanduser()
    suffix = path.suffix.lower()
    looks_like_file = is_image_path(name) or suffix in WEIGHTS_SUFFIXES or "/" in name
    if path.is_file() or looks_like_file:
        if not path.is_file():
            raise StyleError(f"{path}: style file not found")
        if suffix == ".safetensors" and is_fitted_style_file(path):
            return _fitted_component(path.stem, weight, path)
        if suffix in WEIGHTS_SUFFIXES:
            return Component(path.stem, "johnson", weight,
                             johnson_state=read_johnson_weights(path), source=str(path))
        return Component(path.stem, "arbitrary", weight,
                         vector=style_vector_for_image(path), source=str(path))
    known = all_style_names()
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else "; see: vidstyle styles list"
    raise StyleError(f"unknown style {name!r}{hint}")


def all_style_names() -> list[str]:
    return [info.name for info in list_styles()]


# --- building ----------------------------------------------------------------------------


def load_style(
    spec: str,
    *,
    strength: float = 1.0,
    preserve_color: bool = False,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """The network for `spec` with style, strength and colour option bound.

    Returns a module that maps ``N x 3 x H x W`` RGB in [0, 1] to the same (H, W multiples
    of its `size_multiple`), weights on `device`, in eval mode, without gradients.
    `strength` in [0, 1] pulls toward the source (in style space for the arbitrary
    network); `preserve_color` keeps the source's chroma.
    """
    if not 0.0 <= strength <= 1.0:
        raise SettingsError(f"strength must be between 0 and 1, got {strength}")
    components = [resolve_component(name, weight) for name, weight in parse_spec(spec)]
    families = {c.family for c in components}
    if len(families) > 1:
        described = ", ".join(f"{c.label} ({c.family})" for c in components)
        raise StyleError(
            f"{spec!r}: cannot blend styles of different networks ({described}); "
            "blend only painting styles, only presets, or only Johnson networks"
        )
    builder = {"conditional": _conditional, "arbitrary": _arbitrary, "johnson": _johnson}
    network, pixel_strength = builder[families.pop()](components, strength)
    module = StyleFinish(network, strength=pixel_strength, preserve_color=preserve_color)
    sizes = {c.trained_size for c in components}
    if len(sizes) == 1 and None not in sizes:
        module.trained_size = sizes.pop()  # what --style-scale 1 reproduces (engines/scale.py)
        if any(c.rows is not None for c in components):
            module.working_side = WORKING_SIDE  # one stroke size at every resolution
    module = module.to(device).eval()
    module.requires_grad_(False)
    return module


def _weights(components: list[Component]) -> list[float]:
    total = sum(c.weight for c in components)
    return [c.weight / total for c in components]


def _conditional(components: list[Component], strength: float) -> tuple[nn.Module, float]:
    mix = torch.zeros(NUM_STYLES)
    for component, weight in zip(components, _weights(components), strict=True):
        mix[component.preset] += weight
    files = {c.network_file for c in components}
    if len(files) > 1:
        raise StyleError("cannot blend presets of different 26-style networks")
    network = load_multistyle(files.pop())
    return network.set_style_weights(mix), strength


def load_multistyle(network: Path | str | None = None) -> MultiStyleNet:
    """A 26-style network: a shipped one by catalogue name (default `PRESET_NETWORK`), or a
    safetensors file of the same keys."""
    network = network or PRESET_NETWORK
    if isinstance(network, str):
        state = shipped_tensors(network, "network")
        return load_into(MultiStyleNet(), state, _shipped_path(network, "network"))
    if network.suffix.lower() != ".safetensors":
        raise StyleError(f"{network}: a 26-style network file must be .safetensors")
    state, _ = read_safetensors(network)
    return load_into(MultiStyleNet(), {k: v.float() for k, v in state.items()}, network)


def _arbitrary(components: list[Component], strength: float) -> tuple[nn.Module, float]:
    transformer = load_into(
        ArbitraryTransformer(), shipped_tensors("arbitrary", "transformer"),
        _shipped_path("arbitrary", "transformer"),
    )
    if all(c.rows is None for c in components):  # painting vectors only: blend the vectors
        style = sum(w * c.vector.reshape(1, -1).float()
                    for c, w in zip(components, _weights(components), strict=True))
    else:  # fitted rows among them: blend in norm space, where every style has rows
        with torch.no_grad():
            parts = [(c.rows if c.rows is not None
                      else transformer.style_rows(c.vector.reshape(1, -1).float()), w)
                     for c, w in zip(components, _weights(components), strict=True)]
        style = mix_rows(parts)
    predictor = load_predictor() if strength < 1.0 else None
    # Strength is applied in style space here, so the pixel mix afterwards is off (1.0).
    return ArbitraryStylizer(transformer, style, strength=strength, predictor=predictor), 1.0


def _johnson(components: list[Component], strength: float) -> tuple[nn.Module, float]:
    networks = [load_into(JohnsonNet(), c.johnson_state, c.source or c.label)
                for c in components]
    if len(networks) == 1:
        return networks[0], strength
    return WeightedOutputs(networks, _weights(components)), strength


def _shipped_path(network: str, role: str) -> Path:
    return WEIGHTS_DIR / load_catalogue().networks[network].files[role][0]


# --- listing and naming ------------------------------------------------------------------


def list_styles() -> list[StyleInfo]:
    """Every style a name can select: built-ins (catalogue order), then the user's."""
    catalogue = load_catalogue()
    return [catalogue.info(name) for name in catalogue.styles] + list_user_styles()
