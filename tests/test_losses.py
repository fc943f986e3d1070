"""Losses: Gram normalisation, scale invariance, layer weights, total variation."""

from __future__ import annotations

import torch
from helpers import STYLE_LAYERS, photo

from vidstyle.losses import (
    content_distance,
    content_loss,
    gram_matrix,
    style_distance,
    style_grams,
    style_loss,
    total_variation,
)
from vidstyle.styles.lossnet import load_vgg19


def test_gram_matrix_is_normalised_by_channels_and_positions():
    features = torch.randn(2, 4, 5, 6)
    flat = features[1].reshape(4, 30)
    assert torch.allclose(gram_matrix(features)[1], flat @ flat.T / (4 * 30), atol=1e-5)
    # The same texture twice as large has the same statistics.
    tiled = features.repeat(1, 1, 2, 2)
    assert torch.allclose(gram_matrix(tiled), gram_matrix(features), atol=1e-5)


def test_content_loss_is_relative_and_scale_invariant():
    a, b = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)
    assert content_loss(b, b).item() == 0.0
    assert torch.isclose(content_loss(a, b), content_loss(100 * a, 100 * b))
    assert torch.isclose(content_loss(torch.zeros_like(b), b), torch.tensor(1.0))


def test_style_loss_weights_layers():
    g = {"x": torch.ones(1, 2, 2), "y": torch.ones(1, 2, 2)}
    t = {"x": torch.ones(1, 2, 2), "y": 2 * torch.ones(1, 2, 2)}
    assert style_loss(g, t, {"x": 1.0, "y": 0.0}).item() == 0.0
    assert torch.isclose(style_loss(g, t, {"x": 0.0, "y": 4.0}), torch.tensor(4 * 0.25))
    assert torch.isclose(style_loss(g, t), torch.tensor(0.25))


def test_total_variation_is_zero_for_flat_and_larger_for_texture():
    assert total_variation(torch.full((1, 3, 8, 8), 0.3)).item() == 0.0
    baboon = photo("baboon.jpg", 64)
    blurred = torch.nn.functional.avg_pool2d(baboon, 3, 1, 1, count_include_pad=False)
    assert total_variation(baboon) > 2 * total_variation(blurred)


def test_distances_are_per_image_and_zero_for_the_target_itself():
    vgg = load_vgg19()
    fruits, baboon = photo("fruits.jpg", 64), photo("baboon.jpg", 64)[..., : 60, :]
    batch = torch.cat([fruits, baboon[..., : fruits.shape[2], : fruits.shape[3]]])
    target = style_grams(fruits, vgg, STYLE_LAYERS)
    distances = style_distance(batch, target, vgg, STYLE_LAYERS)
    assert distances.shape == (2,)
    assert distances[0].item() < 1e-6 < distances[1].item()
    content = content_distance(batch, fruits, vgg, "relu4_2")
    assert content.shape == (2,) and content[0].item() < 1e-6 < content[1].item()
