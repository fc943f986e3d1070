"""A fitted style: a painting as the norm rows of the shipped arbitrary-style network.

Dumoulin et al. (2017, sec. 3.4) showed that a new painting needs only its own
instance-norm scale and shift per layer on top of convolutions trained at scale: the
convolutions stay frozen. Ghiasi et al.'s arbitrary-style transformer is built the same
way (its style vector only sets those rows, through one linear map per norm), so a
painting fitted there is small data (694 numbers, 5 KB with metadata), and it means
something only on the network it was fitted to. The file says which:

    safetensors, one C-vector per norm: "<norm's path>.scale" / ".shift" (`NormRows` keys)
    metadata:  format = "vidstyle-norms", base = catalogue name of the network,
               base_sha256 = that network file's checksum, plus how it was fitted.

`read_fitted_style` refuses, in one line, a file fitted to another base network (another
name, or the same name with other weights), and one whose rows do not fit the base.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from vidstyle.errors import StyleError, WeightsError
from vidstyle.networks.arbitrary import ArbitraryTransformer, NormRows
from vidstyle.styles.catalogue import load_catalogue
from vidstyle.styles.weights import read_safetensors, write_safetensors

FORMAT_NAME = "vidstyle-norms"
FAMILY = "arbitrary"
# The shipped network whose norms a fitted style sets, and the file holding its weights.
BASE_NETWORK = "arbitrary"
BASE_ROLE = "transformer"
# The short side a fitted style paints at unless --style-scale says otherwise (the engine
# scales the frame there and back). Run at the frame's own size, the strokes shrink with
# the resolution: the fitted scream's style distance to the painting (PerceptualMeter at
# 384 px, one photo at three sizes) read 0.37 at 480p, 0.56 at 720p and 0.91 at 1080p; at
# this working size 0.37, 0.37 and 0.37 (docs/training.md, "Stroke size").
WORKING_SIDE = 480


@dataclass(frozen=True)
class FittedStyle:
    """The norm rows of one painting, and the base network they belong to."""

    rows: NormRows  # "<norm>.scale" / ".shift" -> C-vector (float32)
    base: str  # catalogue name of the network
    metadata: dict[str, str]


def base_checksum(base: str) -> str | None:
    """The catalogue's sha256 of a base network's weights, or None if `base` is not one."""
    entry = load_catalogue().networks.get(base)
    if entry is None or entry.family != FAMILY:
        return None
    return entry.files[BASE_ROLE][1]


def is_fitted_style(metadata: dict[str, str]) -> bool:
    return metadata.get("format") == FORMAT_NAME


def is_fitted_style_file(path: Path) -> bool:
    """Whether `path` is a safetensors file that says it holds a fitted style."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            return is_fitted_style(dict(file.metadata() or {}))
    except (SafetensorError, OSError, ValueError):
        return False


def write_fitted_style(path: Path, rows: NormRows, metadata: dict[str, str],
                       base: str = BASE_NETWORK) -> None:
    """Write `rows` (float32 C-vectors) with the base network's name and checksum."""
    tensors = {key: value.detach().float().cpu().reshape(-1).contiguous()
               for key, value in rows.items()}
    full = {**metadata, "format": FORMAT_NAME, "family": FAMILY, "base": base,
            "base_sha256": base_checksum(base) or ""}
    write_safetensors(Path(path), tensors, full)


def read_fitted_style(path: str | Path, sha256: str | None = None) -> FittedStyle:
    """A fitted style file, proven to belong to a shipped base network and to fit it.

    Raises WeightsError (unreadable, checksum) or StyleError (another base network)."""
    path = Path(path)
    tensors, metadata = read_safetensors(path, sha256=sha256)
    if not is_fitted_style(metadata):
        raise WeightsError(path, "not a fitted style (no 'vidstyle-norms' format in its metadata)")
    base = metadata.get("base", "")
    checksum = base_checksum(base)
    if checksum is None:
        raise StyleError(f"{path}: fitted to network {base!r}, which is not an arbitrary-style "
                         "network this vidstyle ships")
    if metadata.get("base_sha256") != checksum:
        raise StyleError(f"{path}: fitted to another version of network {base!r} "
                         "(checksum differs); fit it again with `vidstyle train`")
    check_rows(path, tensors)
    return FittedStyle({k: v.float() for k, v in tensors.items()}, base, metadata)


def check_rows(path: Path, rows: dict[str, torch.Tensor]) -> None:
    """Every norm of the base network gets one vector of its channel count, no more."""
    wanted = {}
    for norm in ArbitraryTransformer().norms():
        channels = norm.to_scale.out_features
        wanted |= {f"{norm.key}.scale": (channels,), f"{norm.key}.shift": (channels,)}
    shapes = {key: tuple(value.shape) for key, value in rows.items()}
    if shapes != wanted:
        missing = sorted(set(wanted) - set(shapes))[:2]
        raise StyleError(f"{path}: its norm rows do not fit the arbitrary-style network"
                         f"{' (missing ' + ', '.join(missing) + ')' if missing else ''}")
