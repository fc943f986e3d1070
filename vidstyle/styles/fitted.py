"""A fitted style: a painting as one more row of norm parameters on a shipped 26-style network.

Dumoulin et al. (2017, sec. 3.4) showed that a new painting needs only its own
instance-norm scale and shift per layer on top of convolutions trained at scale: the
convolutions stay frozen. So a fitted style is small data (about a thousand numbers,
4 KB), and it means something only on the network it was fitted to. The file says which:

    safetensors, one C-vector per norm: "<state-dict key of the norm's scale or shift>"
    metadata:  format = "vidstyle-norms", base = catalogue name of the network,
               base_sha256 = that network file's checksum, plus how it was fitted.

`read_fitted_style` refuses, in one line, a file fitted to another base network (another
name, or the same name with other weights), and one whose vectors do not fit the base.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from vidstyle.errors import StyleError, WeightsError
from vidstyle.networks.conditional import MultiStyleNet, is_style_parameter
from vidstyle.styles.catalogue import load_catalogue
from vidstyle.styles.weights import read_safetensors, write_safetensors

FORMAT_NAME = "vidstyle-norms"
FAMILY = "conditional"


@dataclass(frozen=True)
class FittedStyle:
    """The norm rows of one painting, and the base network they belong to."""

    rows: dict[str, torch.Tensor]  # state-dict key -> C-vector (float32)
    base: str  # catalogue name of the 26-style network
    metadata: dict[str, str]


def base_checksum(base: str) -> str:
    """The catalogue's sha256 of a shipped 26-style network: what a fitted style is bound to."""
    entry = load_catalogue().networks.get(base)
    if entry is None or entry.family != FAMILY:
        raise StyleError(f"{base!r} is not a shipped 26-style network")
    return entry.files["network"][1]


def is_fitted_style(metadata: dict[str, str]) -> bool:
    return metadata.get("format") == FORMAT_NAME


def is_fitted_style_file(path: Path) -> bool:
    """Whether `path` is a safetensors file that says it holds a fitted style."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            return is_fitted_style(dict(file.metadata() or {}))
    except (SafetensorError, OSError, ValueError):
        return False


def write_fitted_style(path: Path, rows: dict[str, torch.Tensor], base: str,
                       metadata: dict[str, str]) -> None:
    """Write `rows` (float32) with the base network's name and checksum in the metadata."""
    tensors = {key: value.detach().float().cpu().contiguous() for key, value in rows.items()}
    full = {**metadata, "format": FORMAT_NAME, "family": FAMILY, "base": base,
            "base_sha256": base_checksum(base)}
    write_safetensors(Path(path), tensors, full)


def read_fitted_style(path: str | Path, sha256: str | None = None) -> FittedStyle:
    """A fitted style file, proven to belong to a shipped base network and to fit it.

    Raises WeightsError (unreadable, checksum) or StyleError (another base network)."""
    path = Path(path)
    tensors, metadata = read_safetensors(path, sha256=sha256)
    if not is_fitted_style(metadata):
        raise WeightsError(path, "not a fitted style (no 'vidstyle-norms' format in its metadata)")
    base = metadata.get("base", "")
    entry = load_catalogue().networks.get(base)
    if entry is None or entry.family != FAMILY:
        raise StyleError(f"{path}: fitted to network {base!r}, which is not a 26-style network "
                         "this vidstyle ships")
    if metadata.get("base_sha256") != base_checksum(base):
        raise StyleError(f"{path}: fitted to another version of network {base!r} "
                         "(checksum differs); fit it again with `vidstyle train`")
    check_rows(path, tensors)
    return FittedStyle({k: v.float() for k, v in tensors.items()}, base, metadata)


def check_rows(path: Path, rows: dict[str, torch.Tensor]) -> None:
    """Every norm of the 26-style network gets one vector of its channel count, no more."""
    wanted = {key: value.shape[1] for key, value in MultiStyleNet().state_dict().items()
              if is_style_parameter(key)}
    shapes = {key: tuple(value.shape) for key, value in rows.items()}
    if set(shapes) != set(wanted) or any(shapes[k] != (c,) for k, c in wanted.items()):
        missing = sorted(set(wanted) - set(shapes))[:2]
        raise StyleError(f"{path}: its norm vectors do not fit the 26-style network"
                         f"{' (missing ' + ', '.join(missing) + ')' if missing else ''}")
