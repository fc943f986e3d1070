"""benchmarks/ideal.py: the steady painting must be filmed exactly as the clip was."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from build_corpus import camera_move  # noqa: E402

from benchmarks import ideal  # noqa: E402


def photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(30, 40, 3)).astype(np.uint8)
    return cv2.resize(coarse, (400, 300), interpolation=cv2.INTER_CUBIC)


PARAMS = {"size": (96, 64), "zoom": 1.2, "pan": (0.3, 0.1), "crf": 23, "gain": 0.5}


def test_film_reproduces_the_clips_camera_move():
    # The clip's own frames without noise, and the canvas filmed along the path the
    # builder recorded: the same pictures, to rounding (the builder warps 8-bit pixels).
    source = photo()
    made = list(itertools.islice(camera_move(source, PARAMS, seed=3), 6))
    frames = [image for image, _ in made]
    camera = [list(path) for _, path in made]
    filmed = ideal.film(ideal.clip_canvas(source, PARAMS), camera, PARAMS["size"], 6)
    for ours, theirs in zip(filmed, frames, strict=True):
        difference = np.abs(ours.astype(int) - theirs.astype(int))
        assert difference.max() <= 4  # cubic overshoot: the builder clips it in 8 bits first
        assert difference.mean() < 0.6


def test_canvas_keeps_the_exposure_and_drops_nothing_else():
    source = photo()
    canvas = ideal.clip_canvas(source, PARAMS)
    bright = ideal.clip_canvas(source, PARAMS | {"gain": 1.0})
    assert canvas.shape[1] >= 1.5 * PARAMS["size"][0]
    np.testing.assert_allclose(canvas, bright * 0.5, atol=1e-3)


def test_a_steady_painting_scores_under_a_flickering_one():
    source = photo(1)
    made = list(itertools.islice(camera_move(source, PARAMS, seed=4), 5))
    frames = [image for image, _ in made]
    camera = [list(path) for _, path in made]
    texture = photo(2).astype(np.float32)
    steady = ideal.film(ideal.clip_canvas(texture, PARAMS), camera, PARAMS["size"], 5)
    rng = np.random.default_rng(5)
    flicker = [np.clip(f.astype(int) + rng.integers(-40, 41, f.shape), 0, 255).astype(np.uint8)
               for f in steady]
    scores = ideal.score(frames, {"steady": steady, "flicker": flicker}, camera)
    for measure in ("eval", "independent", "truth"):
        assert scores["steady"][measure] < scores["flicker"][measure] / 2
    assert np.isfinite(scores["steady"]["truth"])


def test_softening_a_pixel_fine_painting_lowers_its_floor_along_the_truth():
    # Texture at the pixel scale cannot be carried by a sub-pixel move through any
    # interpolating warp: the steady painting's error along the truth is high, and a
    # blur of a fraction of a pixel takes most of it away.
    source = photo(1)
    made = list(itertools.islice(camera_move(source, PARAMS | {"gain": 1.0}, seed=6), 5))
    frames = [image for image, _ in made]
    camera = [list(path) for _, path in made]
    rng = np.random.default_rng(7)
    canvas = ideal.clip_canvas(source, PARAMS | {"gain": 1.0})
    fine = np.clip(canvas + rng.normal(0, 40, canvas.shape), 0, 255).astype(np.float32)
    sharp = ideal.film(fine, camera, PARAMS["size"], 5)
    soft = ideal.film(ideal.soften(fine, 0.8), camera, PARAMS["size"], 5)
    scores = ideal.score(frames, {"sharp": sharp, "soft": soft}, camera)
    assert scores["soft"]["truth"] < scores["sharp"]["truth"] / 2


def test_softened_outputs_keep_shape_and_mean():
    rng = np.random.default_rng(8)
    styled = [torch.from_numpy(rng.random((3, 20, 30), dtype=np.float32)).half()]
    [soft] = ideal.softened_outputs(styled, 0.8)
    assert soft.shape == (3, 20, 30)
    assert abs(float(soft.mean()) - float(styled[0].float().mean())) < 0.01
    assert float(soft.std()) < float(styled[0].float().std()) / 2
