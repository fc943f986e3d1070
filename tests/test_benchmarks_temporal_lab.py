"""benchmarks/temporal_lab.py: the filters, flows and knobs that lost still do what their
measurements say (long-term and gradient filters, reduced-size and one-way flows, the
uncover mark, the relative structure test, the global-motion prior, the edge-aware flow),
and at its defaults the lab's flow filter is the product's, to the bit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from test_flow import MARGIN, SHIFT, rgb, shifted_photos
from test_temporal import (
    SIZE,
    check_cuts,
    consistent_style,
    flickering_style,
    panning_frames,
    run,
)

from benchmarks import temporal_lab as lab
from benchmarks.temporal_lab import (
    EdgeAwareFlow,
    GradientFilter,
    LabFlowFilter,
    LongTermFilter,
    affine_field,
    affine_fit,
    edge_aware_smooth,
    global_motion,
    has_edge_aware_smoothing,
    homography_flow,
    lab_flow_with_confidence,
    relative_structure_weight,
    screened_lowpass,
    spread_photometric_weight,
    with_global_motion,
)
from vidstyle.temporal.blend import FlowFilter, make_temporal_filter
from vidstyle.temporal.flow import (
    PHOTOMETRIC_ALPHA,
    FlowConfidence,
    FlowEstimator,
    photometric_weight,
)


@pytest.fixture(scope="module")
def shifted_pair() -> tuple[np.ndarray, np.ndarray]:
    return shifted_photos()


@pytest.mark.parametrize("structure", [0.0, 5.0])
def test_at_its_defaults_the_lab_filter_is_the_products(samples, structure):
    # The sweeps compare every variant with "flow:S", which is this filter with no keys:
    # it must compute what `vidstyle apply` computes, bit for bit.
    from helpers import decoded_frames

    frames = [f.to_ndarray(format="rgb24") for f in decoded_frames(samples / "box.mp4")[:5]]
    product = make_temporal_filter("flow", 0.95, structure)
    laboratory = LabFlowFilter(0.95, structure_alpha=structure)
    for index, frame in enumerate(frames):
        styled = flickering_style(frame, index)
        assert torch.equal(product(frame, styled.clone()), laboratory(frame, styled.clone()))
    assert laboratory.cut_coverage == product.cut_coverage
    assert isinstance(product, FlowFilter) and not isinstance(product, LabFlowFilter)


def test_the_product_never_imports_the_lab():
    import subprocess
    import sys

    code = ("import sys, vidstyle, vidstyle.api, vidstyle.temporal.blend, vidstyle.evaluate; "
            "print(any(name.startswith('benchmarks') for name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(("round_trip", "boundary"), [(True, 0.002), (False, 0.002)])
def test_each_confidence_has_its_own_cut_threshold(samples, round_trip, boundary):
    check_cuts(LabFlowFilter(0.8, flow_round_trip=round_trip, boundary_absolute=boundary),
               samples)


def test_gradient_filter_keeps_the_current_frames_fine_texture():
    """Bonneel et al.'s filter follows the past in coarse tones only: a fine checkerboard
    that appears in the current frame survives, a uniform brightness jump does not."""
    frames = panning_frames(2, step=(0, 0))
    previous = torch.full((3, SIZE, SIZE), 0.5)
    checker = torch.from_numpy((np.indices((SIZE, SIZE)).sum(0) % 2).astype(np.float32))
    current = 0.7 + 0.1 * (checker - 0.5)
    gradient = GradientFilter(1.0, cutoff=8.0)
    gradient(frames[0], previous)
    out = gradient(frames[1], current.expand(3, -1, -1).clone())
    centre = out[:, 16:-16, 16:-16]
    assert abs(float(centre.mean()) - 0.5) < 0.02  # the tone jump was pulled back
    contrast = float((centre[:, 1:, :] - centre[:, :-1, :]).abs().mean())
    assert contrast > 0.08  # the 0.1 checkerboard kept (nearly) all its contrast
    flow = FlowFilter(1.0)
    flow(frames[0], previous)
    flat = flow(frames[1], current.expand(3, -1, -1).clone())[:, 16:-16, 16:-16]
    assert float((flat[:, 1:, :] - flat[:, :-1, :]).abs().mean()) < 0.02


def test_screened_lowpass_keeps_constants_and_damps_fine_detail():
    constant = torch.full((1, 32, 48), 0.3)
    torch.testing.assert_close(screened_lowpass(constant, 8.0), constant)
    stripes = torch.from_numpy((np.arange(48) % 2).astype(np.float32)).expand(1, 32, 48) - 0.5
    # Away from the mirrored border, where the stripes' phase breaks.
    assert float(screened_lowpass(stripes, 8.0)[..., 8:-8, 8:-8].abs().max()) < 0.05


def test_long_term_filter_with_one_frame_of_memory_is_the_flow_filter():
    frames = panning_frames(4)
    styled = [flickering_style(frame, i) for i, frame in enumerate(frames)]
    one = run(LongTermFilter(0.8, memory=1), frames, styled)
    flow = run(FlowFilter(0.8), frames, styled)
    for a, b in zip(one, flow, strict=True):
        assert np.abs(a.astype(int) - b).max() <= 1


def test_long_term_filter_recovers_a_region_hidden_in_the_last_frame():
    """Frame t-1 is fully occluded (weight 0) but t-2 saw the region: the long-term filter
    pulls towards t-2's output, the one-step filter cannot."""
    frames = panning_frames(3, step=(0, 0))
    zero_flow = np.zeros((SIZE, SIZE, 2), np.float32)
    ones = np.ones((SIZE, SIZE), np.float32)
    hidden = FlowConfidence(flow=zero_flow, confidence=np.full_like(ones, 0.2), reliable=ones)
    long_term = LongTermFilter(1.0, memory=3, cut_coverage=0.0)
    long_term(frames[0], torch.zeros(3, SIZE, SIZE))
    long_term(frames[1], torch.ones(3, SIZE, SIZE), hidden)  # mostly new: ~0.8
    out = long_term(frames[2], torch.ones(3, SIZE, SIZE), hidden)
    # t-1 (output 0.8) has weight 0.2; t-2 (output 0, a static scene, confidence ~1) gets
    # the remaining ~0.8: out ~ 1 - 0.04 - 0.8 = 0.16, against 0.96 for the one-step filter.
    one_step = LabFlowFilter(1.0, cut_coverage=0.0)
    one_step(frames[0], torch.zeros(3, SIZE, SIZE))
    one_step(frames[1], torch.ones(3, SIZE, SIZE), hidden)
    single = one_step(frames[2], torch.ones(3, SIZE, SIZE), hidden)
    assert float(out.mean()) < float(single.mean()) - 0.3


def test_flow_at_reduced_resolution_still_tracks_motion():
    frames = [
        cv2.resize(f, (SIZE * 2, SIZE * 2), interpolation=cv2.INTER_CUBIC)
        for f in panning_frames(2)
    ]
    flow_filter = LabFlowFilter(0.6, flow_max_size=SIZE)
    estimate = flow_filter.estimate(frames[0], frames[1])
    # The window slid right/down by (6, 4) px at this scale: the pixel at x in the current
    # frame was at x + (6, 4) in the previous one.
    centre = estimate.flow[SIZE // 2 : -SIZE // 2, SIZE // 2 : -SIZE // 2]
    np.testing.assert_allclose(np.median(centre.reshape(-1, 2), axis=0), [6, 4], atol=0.5)
    assert estimate.confidence.mean() > 0.5


def test_the_uncovered_mark_lowers_the_trust_for_a_few_frames_then_fades():
    """Where a pixel was just uncovered (confidence 0) the network's frame passes, halo
    and all; the next frames trust that memory less (the trail behind a moving object,
    docs/temporal.md), by a mark fading by `uncover_memory` a frame. Elsewhere, and with
    no mark, the filter is unchanged."""
    frames = panning_frames(4)
    still = np.zeros((SIZE, SIZE, 2), np.float32)
    uncovered = np.ones((SIZE, SIZE), np.float32)
    uncovered[:, :16] = 0.0
    trusted = np.ones((SIZE, SIZE), np.float32)
    estimates = [FlowConfidence(still, c, c) for c in (uncovered, trusted, trusted)]
    halo = torch.zeros(3, SIZE, SIZE)
    halo[:, :, :16] = 1.0  # painted on the uncovered strip once, then gone

    def outputs(memory: float) -> list[torch.Tensor]:
        temporal = LabFlowFilter(0.9, cut_coverage=0.0, uncover_memory=memory)
        temporal(frames[0], torch.zeros(3, SIZE, SIZE))
        network = [halo, torch.zeros(3, SIZE, SIZE), torch.zeros(3, SIZE, SIZE)]
        return [temporal(frames[i + 1], network[i], estimates[i]) for i in range(3)]

    plain, marked = outputs(0.0), outputs(0.5)
    for a, b in zip(plain, marked, strict=True):
        assert torch.equal(a[:, :, 16:], b[:, :, 16:])
    assert torch.equal(plain[0], halo) and torch.equal(marked[0], halo)
    # The plain filter keeps 0.9 of the halo, then 0.81; the marked one trusts it at
    # 1 - 0.5, then 1 - 0.25.
    strip = (slice(None), slice(None), slice(0, 16))
    assert torch.allclose(plain[1][strip], torch.full((3, SIZE, 16), 0.9))
    assert torch.allclose(marked[1][strip], torch.full((3, SIZE, 16), 0.45))
    assert torch.allclose(plain[2][strip], torch.full((3, SIZE, 16), 0.81))
    assert torch.allclose(marked[2][strip], torch.full((3, SIZE, 16), 0.45 * 0.9 * 0.75))


def test_the_relative_structure_test_forgives_the_networks_own_coarse_change():
    size = (3, 64, 64)
    current = torch.full(size, 0.8)
    smoothed = torch.full(size, 0.5)  # the filter's past, between two flickering frames
    network_before = torch.full(size, 0.2)  # the network's own previous frame, far off
    plain = relative_structure_weight(current, smoothed, 5.0, 16)
    relative = relative_structure_weight(current, smoothed, 5.0, 16, network_before)
    assert float(plain.max()) < 0.3  # the plain test drops the past: flicker comes back
    assert float(relative.min()) > 0.99  # the network changed more than the past did
    wall = torch.full(size, 0.2)  # the network paints the same wall in both frames
    drifted = wall.clone()
    drifted[:, :32] = 1.0  # a halo the filter's past dragged onto the wall
    weight = relative_structure_weight(wall, drifted, 5.0, 16, wall.clone())
    assert float(weight[:16].max()) < 0.01  # the drifted past is still dropped
    assert float(weight[48:].min()) > 0.99  # and the wall it fits is kept


def test_the_relative_filter_still_pulls_a_coarse_flicker_back():
    frames = panning_frames(2)
    styled = [consistent_style(frame) for frame in frames]
    flickered = (styled[1] + 0.3).clamp(0, 1)  # the network brightens the whole frame
    outputs = {}
    for relative in (False, True):
        temporal = LabFlowFilter(0.95, structure_alpha=5.0, structure_relative=relative)
        temporal(frames[0], styled[0])
        outputs[relative] = temporal(frames[1], flickered)
        assert temporal.previous_styled is (flickered if relative else None)
    target = float(styled[1].mean())
    plain_left = abs(float(outputs[False].mean()) - target)
    relative_left = abs(float(outputs[True].mean()) - target)
    assert relative_left < 0.5 * plain_left

def test_flow_at_reduced_size_comes_back_at_full_size(shifted_pair):
    previous, current = shifted_pair
    step = lab_flow_with_confidence(previous, current, FlowEstimator(), max_size=64)
    assert step.flow.shape == (*current.shape[:2], 2)
    assert step.confidence.shape == step.reliable.shape == current.shape[:2]
    interior = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    median = np.median(step.flow[interior].reshape(-1, 2), 0)
    np.testing.assert_allclose(median, np.negative(SHIFT), atol=0.5)



# ------------------------------------------------------------------- global motion


def camera(image: np.ndarray, zoom: float, offset: tuple[float, float], size: int,
           noise: float, seed: int) -> np.ndarray:
    """`image` seen through a camera: pixel p shows image point q at p = zoom * q + offset,
    with Gaussian sensor noise."""
    matrix = np.float32([[zoom, 0, offset[0]], [0, zoom, offset[1]]])
    frame = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    frame += np.random.default_rng(seed).normal(0, noise, frame.shape)
    return np.clip(frame, 0, 255).astype(np.uint8)


def camera_flow(now: tuple, before: tuple, size: int) -> np.ndarray:
    """The exact flow current -> previous of two `camera` views (zoom, offset)."""
    (zoom, (bx, by)), (zoom_p, (bx_p, by_p)) = now, before
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.stack([(xs - bx) * zoom_p / zoom + bx_p - xs,
                     (ys - by) * zoom_p / zoom + by_p - ys], axis=-1)


@pytest.fixture(scope="module")
def flat_sky_move():
    """A zooming, panning camera over a photo whose upper half is a flat, noisy 'sky'."""
    image = rgb("building.jpg", 320)
    image[:150] = image[:150].reshape(-1, 3).mean(0)
    now, before = (1.03, (-40.0, -30.0)), (1.0, (-38.5, -29.0))
    current = camera(image, *now, 192, noise=3.0, seed=1)
    previous = camera(image, *before, 192, noise=3.0, seed=2)
    return previous, current, camera_flow(now, before, 192)


def endpoint_error(flow: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(flow - truth, axis=-1)[MARGIN:-MARGIN, MARGIN:-MARGIN]


def test_global_motion_recovers_a_camera_move(flat_sky_move):
    previous, current, truth = flat_sky_move
    homography = global_motion(current, previous)
    assert homography is not None
    assert endpoint_error(homography_flow(homography, current.shape[:2]), truth).mean() < 0.15


def test_the_global_motion_fills_the_flat_region_where_dis_guesses(flat_sky_move):
    previous, current, truth = flat_sky_move
    dense = FlowEstimator()(current, previous)
    prior = with_global_motion(dense, current, previous, margin=0.2)
    sky = slice(MARGIN, 40)  # rows of flat sky in every view
    dense_sky = endpoint_error(dense, truth)[sky].mean()
    prior_sky = endpoint_error(prior, truth)[sky].mean()
    assert prior_sky < 0.5 * dense_sky
    assert endpoint_error(prior, truth).mean() < endpoint_error(dense, truth).mean()


def test_an_object_that_moves_on_its_own_keeps_the_dense_flow():
    background = rgb("fruits.jpg", 160)
    patch = rgb("baboon.jpg", 48)
    previous, current = background.copy(), background.copy()
    previous[56:104, 40:88] = patch
    current[56:104, 46:94] = patch  # moved 6 px right over a still background
    dense = FlowEstimator()(current, previous)
    prior = with_global_motion(dense, current, previous, margin=0.2)
    assert global_motion(current, previous) is not None  # the background's: still
    inside = (slice(64, 96), slice(54, 86))
    dense_miss = np.linalg.norm(dense[inside] - (-6, 0), axis=-1).mean()
    prior_miss = np.linalg.norm(prior[inside] - (-6, 0), axis=-1).mean()
    assert dense_miss < 1.0  # DIS follows the patch...
    assert prior_miss < dense_miss + 0.1  # ...and the global motion does not overrule it
    assert np.abs(prior[:40]).mean() < np.abs(dense[:40]).mean() + 0.05


def test_a_finite_snap_keeps_a_dense_flow_far_from_the_global_motion(flat_sky_move):
    """In the flat sky any flow explains the frames; without `snap_px` the global motion
    takes it over, with it a dense flow 5 px away (a region moving on its own) stays."""
    previous, current, truth = flat_sky_move
    dense = FlowEstimator()(current, previous)
    dense[:40] += (5.0, 0.0)
    free = with_global_motion(dense, current, previous, margin=0.2)
    snapped = with_global_motion(dense, current, previous, margin=0.2, snap_px=1.0)
    sky = (slice(MARGIN, 34), slice(MARGIN, -MARGIN))
    assert np.linalg.norm(free[sky] - truth[sky], axis=-1).mean() < 1.0
    assert np.linalg.norm(snapped[sky] - dense[sky], axis=-1).mean() < 0.2


def test_the_validity_gate_passes_a_camera_move_and_stops_two_motions(flat_sky_move):
    """`valid_ratio`: one homography that explains the textured pixels as well as DIS (a
    camera move) is used; where halves of the frame move apart (parallax, an object), the
    dense flow is returned as it is."""
    previous, current, truth = flat_sky_move
    dense = FlowEstimator()(current, previous)
    gated = with_global_motion(dense, current, previous, margin=0.2, valid_ratio=1.25)
    sky = slice(MARGIN, 40)
    assert endpoint_error(gated, truth)[sky].mean() < 0.5 * endpoint_error(dense, truth)[sky].mean()

    image = rgb("fruits.jpg", 200)
    before = image[20:148, 20:148].copy()
    now = before.copy()
    now[:, :64] = image[20:148, 17:81]  # the left half moves 3 px one way...
    now[:, 64:] = image[20:148, 87:151]  # ...the right half 3 px the other
    split = FlowEstimator()(now, before)
    assert np.abs(with_global_motion(split, now, before, margin=0.2) - split).max() > 0.5
    assert with_global_motion(split, now, before, margin=0.2, valid_ratio=1.25) is split


def test_without_a_global_motion_the_dense_flow_is_returned_unchanged():
    blank = np.full((64, 64, 3), 90, np.uint8)
    dense = np.random.default_rng(0).normal(0, 1, (64, 64, 2)).astype(np.float32)
    assert global_motion(blank, blank) is None
    assert with_global_motion(dense, blank, blank, margin=0.2) is dense



def test_a_spread_photometric_weight_distrusts_the_neighbourhood_of_a_change(shifted_pair):
    previous, current = shifted_pair
    changed = current.copy()
    changed[60:68, 60:68] = 255 - changed[60:68, 60:68]  # something new in the middle
    flow = FlowEstimator()(current, previous)
    plain = photometric_weight(changed, previous, flow, PHOTOMETRIC_ALPHA)
    spread = spread_photometric_weight(changed, previous, flow, PHOTOMETRIC_ALPHA, 8)
    assert (spread <= plain + 1e-6).all()
    ring = (slice(52, 56), slice(60, 68))  # 4-8 px above the change: unchanged pixels
    assert spread[ring].mean() < 0.5 * plain[ring].mean()



# ------------------------------------------------------------------- edge-aware flow

needs_contrib = pytest.mark.skipif(
    not has_edge_aware_smoothing(),
    reason="OpenCV without the contrib modules (cv2.ximgproc): pip install -e '.[lab]'")


@pytest.mark.parametrize("noise", [0.0, 3.0, 8.0])
@needs_contrib
def test_the_edge_preset_lowers_the_error_of_a_zoom(noise):
    """A clean or noisy zoom and pan over a real photo: the smoothing takes DIS's patch noise
    out and leaves the zoom's ramp alone (without the affine fit it doubled the error of
    the clean zoom, 0.09 -> 0.19 px)."""
    image = rgb("fruits.jpg", 320)
    now, before = (1.03, (-38.0, -29.0)), (1.0, (-36.5, -28.0))
    current = camera(image, *now, 192, noise=noise, seed=1)
    previous = camera(image, *before, 192, noise=noise, seed=2)
    truth = camera_flow(now, before, 192)
    plain = endpoint_error(FlowEstimator("dis", "medium")(current, previous), truth)
    edge = endpoint_error(EdgeAwareFlow()(current, previous), truth)
    assert edge.mean() < 0.9 * plain.mean()


@needs_contrib
def test_an_affine_flow_passes_the_smoothing_unchanged():
    matrix = np.float32([[1.5, -2.0], [0.01, 0.002], [-0.003, 0.02]])
    flow = affine_field(matrix, (90, 160))
    assert np.allclose(affine_fit(flow), matrix, atol=1e-5)
    guide = np.full((90, 160), 60, np.uint8)
    guide[:, 80:] = 200  # an edge the smoother stops at
    assert np.allclose(edge_aware_smooth(guide, flow), flow, atol=1e-3)


@needs_contrib
def test_the_edge_preset_keeps_an_object_that_moves_on_its_own():
    """The smoothing stops at the patch's edges: its 6 px stay 6 px, the still background
    stays still (a Gaussian of the same reach would blur one into the other)."""
    background = rgb("fruits.jpg", 160)
    patch = rgb("baboon.jpg", 48)
    previous, current = background.copy(), background.copy()
    previous[56:104, 40:88] = patch
    current[56:104, 46:94] = patch
    edge = EdgeAwareFlow()(current, previous)
    inside = (slice(64, 96), slice(54, 86))
    assert np.linalg.norm(edge[inside] - (-6, 0), axis=-1).mean() < 1.0
    assert np.abs(edge[:40]).mean() < 0.3
    blurred = cv2.GaussianBlur(FlowEstimator("dis", "medium")(current, previous), (0, 0), 16)
    assert (np.linalg.norm(edge[inside] - (-6, 0), axis=-1).mean()
            < np.linalg.norm(blurred[inside] - (-6, 0), axis=-1).mean())


@needs_contrib
def test_edge_aware_smoothing_flattens_noise_on_an_even_guide():
    guide = np.full((128, 128), 128, np.uint8)
    flow = np.random.default_rng(0).normal(0, 1, (128, 128, 2)).astype(np.float32)
    smooth = edge_aware_smooth(guide, flow)
    assert smooth.shape == flow.shape and smooth.dtype == np.float32
    assert smooth.std() < 0.2 * flow.std()


def test_without_contrib_the_edge_preset_warns_and_follows_plain_dis(monkeypatch, shifted_pair):
    monkeypatch.setattr(lab, "has_edge_aware_smoothing", lambda: False)
    with pytest.warns(RuntimeWarning, match="contrib"):
        estimator = EdgeAwareFlow()
    previous, current = shifted_pair
    assert np.array_equal(estimator(current, previous),
                          FlowEstimator("dis", "medium")(current, previous))


def test_the_fusion_keeps_dis_where_the_frames_decide_and_smooths_where_they_do_not(monkeypatch):
    """Textured half: the smoothed flow is 2 px off and warps worse, so DIS's flow stays.
    Flat half: any flow warps as well, so the smoothed one is taken."""
    source = to_gray_photo("baboon.jpg", 128)
    source[:, 64:] = 120  # the right half has no texture
    target = np.ascontiguousarray(np.roll(source, 3, axis=1))  # content moved 3 px right
    dis = np.zeros((128, 128, 2), np.float32)
    dis[..., 0] = 3.0  # the true flow source -> target
    off = dis + np.float32([2.0, 0.0])
    monkeypatch.setattr(lab, "edge_aware_smooth", lambda guide, flow: off)
    fused = lab.edge_aware_flow(source, target, dis)
    textured, flat = (slice(16, -16), slice(16, 48)), (slice(16, -16), slice(84, 112))
    assert np.array_equal(fused[textured], dis[textured])
    assert np.array_equal(fused[flat], off[flat])


def to_gray_photo(name: str, size: int) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(rgb(name, size), cv2.COLOR_RGB2GRAY))


