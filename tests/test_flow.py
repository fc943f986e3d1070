"""Optical flow, backward warping and the reliability mask, on real photos with a known
motion (the Gatys engine's warm start depends on all three)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle.temporal.flow import (
    CUT_COVERAGE,
    PHOTOMETRIC_ALPHA,
    FlowEstimator,
    dis_coarsest_scale,
    dis_min_side,
    flow_with_confidence,
    photometric_weight,
    reliability_mask,
    squared_error,
    upscale_flow,
    warp_backward,
    warp_backward_tensor,
)

PHOTOS = Path(__file__).resolve().parent.parent / "samples" / "photos"
SHIFT = (3, 2)  # (dx, dy) in pixels: the content moves right 3 and down 2
MARGIN = 16  # pixels next to the border, where part of the scene has no match


def rgb(name: str, size: int) -> np.ndarray:
    image = cv2.imread(str(PHOTOS / name))[..., ::-1]
    return np.ascontiguousarray(cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))


def shifted_photos() -> tuple[np.ndarray, np.ndarray]:
    """(previous, current): the same real photo, current = previous moved by SHIFT."""
    big = rgb("baboon.jpg", 160)
    dx, dy = SHIFT
    previous = big[16:144, 16:144]
    current = big[16 - dy : 144 - dy, 16 - dx : 144 - dx]
    return previous, current


@pytest.fixture(scope="module")
def shifted_pair() -> tuple[np.ndarray, np.ndarray]:
    return shifted_photos()


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_of_a_known_shift_is_within_a_pixel(shifted_pair, method):
    previous, current = shifted_pair
    flow_back = FlowEstimator(method)(current, previous)  # current -> previous
    inner = flow_back[MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(-1, 2)
    assert np.allclose(inner.mean(0), (-SHIFT[0], -SHIFT[1]), atol=1.0)
    # Not just on average: nearly every interior pixel lands within one pixel.
    error = np.linalg.norm(inner - (-SHIFT[0], -SHIFT[1]), axis=1)
    assert (error < 1.0).mean() > 0.9


def test_backward_warp_brings_the_previous_frame_onto_the_current(shifted_pair):
    previous, current = shifted_pair
    flow_back = FlowEstimator()(current, previous)
    warped = warp_backward(previous, flow_back).astype(np.float32)
    before = np.abs(previous.astype(np.float32) - current)[MARGIN:-MARGIN, MARGIN:-MARGIN]
    after = np.abs(warped - current)[MARGIN:-MARGIN, MARGIN:-MARGIN]
    assert after.mean() < 0.25 * before.mean()
    # The tensor warp (used on the stylized frames) samples the same way.
    tensor = torch.from_numpy(previous).permute(2, 0, 1)[None].float()
    warped_t = warp_backward_tensor(tensor, flow_back)[0].permute(1, 2, 0).numpy()
    assert np.abs(warped_t - warped).max() < 1.0


def test_reliability_mask_marks_the_disoccluded_region():
    """A real textured patch moves 16 px right over a static real background: the strip it
    uncovers was hidden in the previous frame, so nothing there can be warped from it."""
    background = rgb("fruits.jpg", 128)
    patch = rgb("baboon.jpg", 40)
    previous, current = background.copy(), background.copy()
    top, left, step = 44, 30, 16
    previous[top : top + 40, left : left + 40] = patch
    current[top : top + 40, left + step : left + step + 40] = patch
    flow = FlowEstimator()
    mask = reliability_mask(flow(current, previous), flow(previous, current))
    uncovered = mask[top + 6 : top + 34, left + 2 : left + step - 2]
    far_background = mask[:, 100:]
    assert uncovered.mean() < 0.3
    assert far_background.mean() > 0.9


def test_flow_with_confidence_tracks_the_shift_and_trusts_the_interior(shifted_pair):
    previous, current = shifted_pair
    step = flow_with_confidence(previous, current)
    interior = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    median = np.median(step.flow[interior].reshape(-1, 2), 0)
    np.testing.assert_allclose(median, np.negative(SHIFT), atol=0.3)
    assert step.confidence[interior].mean() > 0.8
    # The hard mask is the one reliability_mask gives on the same flows.
    flow = FlowEstimator()
    expected = reliability_mask(flow(current, previous), flow(previous, current))
    np.testing.assert_array_equal(step.reliable, expected)


def test_confidence_falls_in_the_disoccluded_region_and_on_a_cut():
    background = rgb("fruits.jpg", 128)
    patch = rgb("baboon.jpg", 40)
    previous, current = background.copy(), background.copy()
    previous[44:84, 30:70] = patch
    current[44:84, 46:86] = patch
    step = flow_with_confidence(previous, current)
    assert step.confidence[50:78, 32:44].mean() < 0.3
    assert step.confidence[:, 100:].mean() > 0.8
    cut = flow_with_confidence(rgb("baboon.jpg", 128), rgb("building.jpg", 128))
    assert cut.coverage < CUT_COVERAGE < step.coverage


def test_confidence_degrades_gracefully_with_sensor_noise(shifted_pair):
    """Noise the flow need not explain costs some confidence, not most of it."""
    previous, current = shifted_pair
    rng = np.random.default_rng(0)

    def noisy(image: np.ndarray) -> np.ndarray:
        return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)

    clean = flow_with_confidence(previous, current).confidence
    dirty = flow_with_confidence(noisy(previous), noisy(current)).confidence
    interior = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    assert dirty[interior].mean() > 0.6
    assert dirty[interior].mean() < clean[interior].mean()


def test_a_wider_motion_boundary_allowance_only_raises_confidence_and_inf_drops_the_test():
    """The motion-boundary allowance (Sundaram et al.'s for the metric, infinity for the
    flicker filter: vidstyle/temporal/blend.py, BOUNDARY_ABSOLUTE): widening it can only
    add trust, and at infinity the one-way confidence is the
    photometric weight alone, which still catches the uncovered strip."""
    background = rgb("fruits.jpg", 128)
    patch = rgb("baboon.jpg", 40)
    previous, current = background.copy(), background.copy()
    previous[44:84, 30:70] = patch
    current[44:84, 46:86] = patch
    confidences = [
        flow_with_confidence(previous, current, round_trip=False, boundary_absolute=b)
        for b in (0.002, 0.02, math.inf)
    ]
    for tight, wide in zip(confidences, confidences[1:], strict=False):
        assert (wide.confidence >= tight.confidence - 1e-6).all()
        assert wide.confidence.mean() > tight.confidence.mean()
    none = confidences[-1]
    photometric = photometric_weight(current, previous, none.flow, PHOTOMETRIC_ALPHA)
    np.testing.assert_allclose(none.confidence, photometric, atol=1e-6)
    assert none.confidence[50:78, 32:44].mean() < 0.3  # the uncovered strip
    assert none.confidence[:, 100:].mean() > 0.9


def test_squared_error_is_the_channel_sum_of_squares():
    rng = np.random.default_rng(4)
    image, warped = rng.random((2, 37, 53, 3), dtype=np.float32)
    expected = ((image - warped) ** 2).sum(axis=-1)
    assert squared_error(image, warped).shape == (37, 53)
    np.testing.assert_allclose(squared_error(image, warped), expected, rtol=1e-6)
    np.testing.assert_allclose(squared_error(image[..., 0], warped[..., 0]),
                               (image[..., 0] - warped[..., 0]) ** 2, rtol=1e-6)


def test_with_neither_test_the_confidence_is_the_photometric_weight(shifted_pair):
    previous, current = shifted_pair
    result = flow_with_confidence(previous, current, round_trip=False,
                                  boundary_absolute=math.inf)
    weight = photometric_weight(current, previous, result.flow, PHOTOMETRIC_ALPHA)
    np.testing.assert_array_equal(result.confidence, weight)
    assert 0.2 < result.confidence.mean() < 1.0  # a real weight, neither all 1 nor all 0


def test_bicubic_tensor_warp_keeps_fine_texture_that_bilinear_loses():
    # Half a pixel of motion: bilinear averages neighbours, so pixel-fine texture halves
    # its contrast every warp (the flow filter warps its own past frame after frame).
    rng = np.random.default_rng(0)
    fine = torch.from_numpy(rng.random((1, 3, 40, 60), dtype=np.float32))
    flow = np.zeros((40, 60, 2), np.float32)
    flow[..., 0] = 0.5
    bilinear = bicubic = fine
    for _ in range(4):
        bilinear = warp_backward_tensor(bilinear, flow)
        bicubic = warp_backward_tensor(bicubic, flow, "bicubic")
    inner = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert float(bicubic[inner].std()) > 1.4 * float(bilinear[inner].std())
    assert float(bicubic.min()) >= float(fine.min())
    assert float(bicubic.max()) <= float(fine.max())
    # Whole-pixel motion is exact either way.
    flow[..., 0] = 1.0
    exact = fine[..., :, 1:]
    for mode in ("bilinear", "bicubic"):
        moved = warp_backward_tensor(fine, flow, mode)[..., :, :-1]
        assert float((moved - exact).abs().max()) < 1e-4


# -- frames too small for DIS (issue 40) -------------------------------------------------


@pytest.mark.parametrize("preset", ["medium", "robust"])
def test_the_pyramid_rule_is_opencvs(preset):
    # `dis_coarsest_scale` mirrors dis_flow.cpp: where it says refused, OpenCV refuses;
    # where it says the pyramid reaches the finest level, OpenCV runs without re-tuning
    # itself. (Between the two OpenCV re-tunes, and can crash: never called there.)
    finest = FlowEstimator("dis", preset)._dis.getFinestScale()
    patch = FlowEstimator("dis", preset)._dis.getPatchSize()
    seen = {"refused": 0, "fits": 0}
    for height in range(1, 7 * patch, 3):
        for width in (*range(1, 7 * patch, 3), 1920):
            coarsest = dis_coarsest_scale(height, width, patch)
            if 0 <= coarsest < finest:
                continue
            dis = FlowEstimator("dis", preset)._dis
            grey = np.zeros((height, width), np.uint8)
            if coarsest < 0:
                with pytest.raises(cv2.error, match="width or height"):
                    dis.calc(grey, grey, None)
                seen["refused"] += 1
            else:
                assert dis.calc(grey, grey, None).shape == (height, width, 2)
                assert (dis.getPatchSize(), dis.getFinestScale()) == (patch, finest)
                seen["fits"] += 1
    assert min(seen.values()) > 0
    side = dis_min_side(patch, finest)
    assert dis_coarsest_scale(side, side, patch) >= finest > dis_coarsest_scale(
        side - 1, side - 1, patch)


def shifted_crops(photo: np.ndarray, size: tuple[int, int], rng: np.random.Generator):
    """(previous, current) crops of a real photo at a random place, the view moved by a
    random sub-pixel shift between them, and the true flow current -> previous."""
    width, height = size
    x = rng.uniform(100, photo.shape[1] - width - 100)
    y = rng.uniform(100, photo.shape[0] - height - 100)
    dx, dy = rng.uniform(-2, 2, size=2)

    def crop(left: float, top: float) -> np.ndarray:
        move = np.float32([[1, 0, -left], [0, 1, -top]])
        return cv2.warpAffine(photo, move, size, flags=cv2.INTER_LINEAR)

    # current(p) = photo(p + corner) = previous(p - shift): the flow is minus the shift.
    return crop(x + dx, y + dy), crop(x, y), (-dx, -dy)


@pytest.mark.parametrize(("size", "gain"), [((2, 400), 0.8), ((640, 4), 0.8), ((7, 7), 0.85),
                                            ((100, 8), 0.4), ((1920, 2), 1.05)])
def test_frames_too_small_for_dis_get_the_flow_of_their_motion(size, gain):
    # The policy (flow.py, `dis_on_enlarged`): such frames are stretched until DIS's
    # pyramid fits them and the flow is scaled back. It must follow the motion better
    # than assuming none (blending without a flow), and never be much worse (1920x2,
    # where 2 rows hold little to follow). `python -m benchmarks.flow --tiny` has the
    # figures these bounds leave room around.
    photo = rgb("fruits.jpg", 2400)
    rng = np.random.default_rng(1)
    ours, still = [], []
    for _ in range(20):
        previous, current, (fx, fy) = shifted_crops(photo, size, rng)
        assert dis_coarsest_scale(*current.shape[:2], 8) < 1  # not DIS's own size
        flow = FlowEstimator()(current, previous)
        assert flow.shape == (*current.shape[:2], 2)
        ours.append(np.hypot(flow[..., 0] - fx, flow[..., 1] - fy).mean())
        still.append(math.hypot(fx, fy))
    assert np.mean(ours) < gain * np.mean(still), (np.mean(ours), np.mean(still))


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 5), (11, 11), (1920, 1), (1, 500)])
@pytest.mark.parametrize("round_trip", [True, False])
def test_the_confidence_exists_at_every_frame_size(size, round_trip):
    # Both the filter's one-way confidence and the metric's with both of Sundaram et al.'s
    # tests (a 1-pixel side has no neighbour for the motion-boundary gradient).
    width, height = size
    rng = np.random.default_rng(3)
    previous = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    estimate = flow_with_confidence(previous, previous.copy(), round_trip=round_trip)
    assert estimate.flow.shape == (height, width, 2)
    assert np.isfinite(estimate.flow).all() and np.abs(estimate.flow).max() < 1.0
    assert estimate.confidence.shape == (height, width)
    assert estimate.confidence.min() >= 0.0 and estimate.confidence.max() <= 1.0
    assert estimate.coverage > CUT_COVERAGE  # the same frame twice is no cut


def test_resizing_a_flow_down_scales_its_vectors():
    flow = np.full((16, 16, 2), (4.0, -2.0), np.float32)
    small = upscale_flow(flow, (2, 8))
    assert small.shape == (2, 8, 2)
    assert np.allclose(small[..., 0], 2.0) and np.allclose(small[..., 1], -0.25)


def test_a_small_frame_does_not_change_the_flow_of_the_next_video(shifted_pair):
    # OpenCV's DIS re-tunes itself for good on a frame too small for its pyramid; one
    # Stylizer runs many files through one filter, so a 30x20 clip first must not change
    # the flow of the 128x128 one after it.
    previous, current = shifted_pair
    alone = FlowEstimator()(current, previous)
    estimator = FlowEstimator()
    for size in ((20, 30), (2, 2)):
        estimator(current[: size[0], : size[1]].copy(), previous[: size[0], : size[1]].copy())
    assert np.array_equal(estimator(current, previous), alone)
