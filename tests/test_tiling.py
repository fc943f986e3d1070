"""benchmarks/tiling.py: Johnson's network in tiles, normalized with given statistics."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from benchmarks.tiling import (
    TiledNetwork,
    drift,
    frame_statistics,
    measured_statistics,
    tile_grid,
)
from vidstyle.engines.compiled import psnr
from vidstyle.styles import load_style

PHOTOS = Path(__file__).resolve().parent.parent / "samples" / "photos"
TILE = (64, 96)  # small tiles, so a small frame has several


def frame(name: str, width: int = 256, height: int = 192) -> torch.Tensor:
    pixels = cv2.resize(cv2.imread(str(PHOTOS / f"{name}.jpg"))[:, :, ::-1], (width, height),
                        interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float() / 255


# The named styles' former Johnson network (vidstyle/weights/ until 2026-12-07): the tests of
# what only a Johnson network has load it by path, as users of old files do.
JOHNSON_FILE = Path(__file__).resolve().parent / "data" / "johnson_scream.safetensors"


@pytest.fixture(scope="module")
def network():
    return load_style(str(JOHNSON_FILE)).network.eval()


@pytest.mark.parametrize("size", [(192, 256), (200, 300), (64, 96)])
def test_the_tile_interiors_cover_the_frame_once(size):
    height, width = size
    (inner_h, inner_w, tile_h, tile_w), tiles = tile_grid(height, width, TILE, 16)
    owned = np.zeros(size, int)
    for top, left, y0, x0 in tiles:
        assert 0 <= top <= y0 and 0 <= left <= x0  # the interior lies inside its tile
        assert top + tile_h <= height and left + tile_w <= width
        owned[y0 : y0 + inner_h, x0 : x0 + inner_w] += 1
    assert (owned == 1).all()
    assert inner_h % 4 == 0 and inner_w % 4 == 0


def test_tiles_with_the_frames_own_statistics_match_the_whole_frame(network):
    x = frame("building")
    tiled = TiledNetwork(network, tile=TILE, halo=16)
    with torch.no_grad():
        whole, statistics = measured_statistics(network, x)
        assert torch.equal(whole, network(x))
        out, gathered = tiled.tiled(x, statistics)
    assert psnr(out, whole) >= 40.0
    # What the tiles gathered is (nearly) what they were given.
    assert drift(statistics, gathered, tiled.channels) < 0.02
    # Normalized with another photo's statistics, they are not.
    with torch.no_grad():
        _, other = measured_statistics(network, frame("baboon"))
        wrong, gathered = tiled.tiled(x, other)
    assert psnr(wrong, whole) < 35.0
    assert drift(other, gathered, tiled.channels) > 0.05


def test_a_frame_that_drifts_from_the_anchor_runs_whole(network):
    tiled = TiledNetwork(network, tile=TILE, halo=16)
    first, same, cut = frame("building"), frame("building"), frame("baboon")
    with torch.no_grad():
        tiled(first)
        assert (tiled.whole_frames, tiled.passes) == (1, 0)  # no statistics yet
        tiled(same)
        assert (tiled.whole_frames, tiled.passes) == (1, 1)  # tiled, kept
        out = tiled(cut)
        assert (tiled.whole_frames, tiled.passes) == (2, 2)  # tiled, drifted, run whole
        assert torch.equal(out, network(cut).float())


def test_frame_statistics_recover_mean_and_std_from_sums_about_another_mean():
    rng = np.random.default_rng(0)
    values = torch.from_numpy(rng.normal(1000.0, 2.0, size=(2, 5000))).float()
    used = torch.stack((torch.full((2,), 990.0), torch.ones(2)))[None]  # L=1, C=2
    centred = values - 990.0
    gathered = torch.stack((centred.sum(1), centred.square().sum(1),
                            torch.full((2,), 5000.0)))[None]
    mean, inverse_std = frame_statistics(used, gathered, 0.0)[0]
    assert torch.allclose(mean, values.mean(1), atol=1e-3)
    assert torch.allclose(1 / inverse_std, values.std(1, unbiased=False), rtol=1e-3)
