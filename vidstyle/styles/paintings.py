"""Any picture as a style: its 100-number style vector, computed once and cached.

The vector comes from the arbitrary network's style predictor (Ghiasi et al. 2017) on the
picture's centre square at 256x256. It is cached in the user cache folder under the
picture's content hash, so a renamed or moved file is still a hit and an edited one a miss.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import numpy as np
import torch

from vidstyle.errors import InputError, StyleError, WeightsError
from vidstyle.files import is_image_name, read_image, user_cache_dir
from vidstyle.images import to_tensor
from vidstyle.networks.arbitrary import StylePredictor, prepare_style_image
from vidstyle.styles.catalogue import load_catalogue, shipped_tensors
from vidstyle.styles.weights import load_into, read_safetensors, write_safetensors

# Bump when the way vectors are computed changes, so old cache entries are not reused.
VECTOR_RECIPE = "centre-square-256-bicubic-v1"


def is_image_path(spec: str) -> bool:
    return is_image_name(spec)


def cache_dir() -> Path:
    return user_cache_dir() / "style_vectors"


def read_style_pixels(path: str | Path) -> np.ndarray:
    """A style picture as RGB uint8 ``H x W x 3``; StyleError naming the file if unreadable."""
    try:
        return read_image(Path(path))
    except InputError as exc:
        raise StyleError(f"{path}: cannot read the style image ({exc.reason})") from None


def read_style_image(path: str | Path) -> torch.Tensor:
    """A picture as a ``1 x 3 x H x W`` float RGB tensor in [0, 1]."""
    return to_tensor(read_style_pixels(path))


def load_predictor(device: torch.device | str = "cpu") -> StylePredictor:
    path = load_catalogue().networks["arbitrary"].files["predictor"][0]
    return load_into(StylePredictor(), shipped_tensors("arbitrary", "predictor"), path).to(device)


@torch.inference_mode()
def predict_style_vector(
    image: torch.Tensor, predictor: StylePredictor | None = None
) -> torch.Tensor:
    """The ``1 x 100`` style vector of a ``1 x 3 x H x W`` picture in [0, 1]."""
    predictor = predictor or load_predictor()
    device = next(predictor.parameters()).device
    return predictor(prepare_style_image(image.to(device))).float().cpu()


def style_vector_for_image(path: str | Path, *, use_cache: bool = True) -> torch.Tensor:
    """The style vector of a picture file, from the cache when it was seen before."""
    path = Path(path)
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise StyleError(f"{path}: style image not found") from None
    except OSError as exc:
        raise StyleError(f"{path}: cannot read the style image ({exc.strerror})") from None
    key = hashlib.sha256(content + VECTOR_RECIPE.encode()).hexdigest()[:32]
    cached = cache_dir() / f"{key}.safetensors"
    if use_cache and cached.is_file():
        try:
            return read_safetensors(cached)[0]["style"]
        except (WeightsError, KeyError):
            pass  # a damaged cache entry is recomputed and overwritten
    vector = predict_style_vector(read_style_image(path))
    if use_cache:
        _write_cache(cached, vector, path)
    return vector


def _write_cache(cached: Path, vector: torch.Tensor, source: Path) -> None:
    # No writable cache folder: the vector is still returned, just not kept.
    with contextlib.suppress(OSError):
        write_safetensors(cached, {"style": vector}, {"source": source.name})
