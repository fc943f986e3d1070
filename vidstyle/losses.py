"""VGG feature losses: content, style (Gram matrices), total variation, and distances.

Units. Feature magnitudes differ by orders of magnitude between layers (conv1_1 Grams are
~1e2-1e3 with the Caffe weights, conv5_1 Grams ~1e0) and between loss networks (Caffe
0-255 inputs vs torchvision's standardised ones). So content and style losses here are
*relative* squared errors, ``||x - target||^2 / ||target||^2``: dimensionless, 0 when
equal, about 1 when the output is as far from the target as the target is from zero.
Equal layer weights then give each layer a comparable say, and weights tuned with one
loss network carry over to the other. (Scale-invariant losses follow the same idea as
crowsonkb/style-transfer-pytorch; the Gram matrix itself is Gatys et al. 2016, eq. 3.)

Total variation is the mean squared difference between neighbouring pixels of an RGB
[0, 1] image (units: intensity^2 per pixel pair).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

# Keeps the relative error finite for an all-zero target (e.g. a black frame's deep features).
RELATIVE_EPS = 1e-8


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``N x C x H x W`` -> ``N x C x C`` channel correlations, divided by C*H*W.

    Dividing by the number of positions makes Grams of different image sizes comparable;
    dividing also by C keeps layers of 64 and 512 channels on a similar scale.
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w).float()
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def relative_squared_error(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ``||value - target||^2 / ||target||^2`` (shape N; target broadcasts)."""
    value, target = value.float(), target.float()
    target = target.expand_as(value)
    dims = tuple(range(1, value.dim()))
    error = (value - target).pow(2).sum(dims)
    return error / (target.pow(2).sum(dims) + RELATIVE_EPS)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared feature error, averaged over the batch (a scalar)."""
    return relative_squared_error(features, target).mean()


def style_loss(
    grams: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """Weighted sum over layers of the relative squared Gram error, batch mean (a scalar).

    `weights` maps layer -> weight (default 1 for each layer in `grams`); target Grams
    may be ``1 x C x C`` and broadcast over the batch.
    """
    return _per_sample_style_loss(grams, target_grams, weights).mean()


def _per_sample_style_loss(
    grams: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    weights: Mapping[str, float] | None,
) -> torch.Tensor:
    total: torch.Tensor | float = 0.0
    for layer, gram in grams.items():
        weight = 1.0 if weights is None else weights.get(layer, 0.0)
        if weight:
            target = target_grams[layer].to(gram.device)
            total = total + weight * relative_squared_error(gram, target)
    return torch.as_tensor(total)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between horizontal and vertical neighbours (a scalar)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def style_grams(image: torch.Tensor, vgg, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Gram matrices of `image` (``N x 3 x H x W`` RGB [0, 1]) at `layers`."""
    features = vgg.features(image, layers)
    return {layer: gram_matrix(features[layer]) for layer in layers}


@torch.no_grad()
def style_distance(
    image: torch.Tensor,
    style_grams_target: Mapping[str, torch.Tensor],
    vgg,
    layers: Sequence[str],
) -> torch.Tensor:
    """How far `image`'s style is from the target: the mean over `layers` of the relative
    squared Gram error. Shape N (one value per image); 0 = same Gram statistics.
    """
    grams = style_grams(image, vgg, layers)
    weights = {layer: 1.0 / len(layers) for layer in layers}
    return _per_sample_style_loss(grams, style_grams_target, weights).cpu()


@torch.no_grad()
def content_distance(
    image: torch.Tensor, content_image: torch.Tensor, vgg, layer: str
) -> torch.Tensor:
    """Relative squared error of `image`'s features at `layer` to `content_image`'s.

    Shape N; 0 = same features, ~1 = as different as the content features are large.
    """
    both = vgg.features(torch.cat([image, content_image.to(image.device)]), [layer])[layer]
    features, target = both.split([image.shape[0], content_image.shape[0]])
    return relative_squared_error(features, target).cpu()
