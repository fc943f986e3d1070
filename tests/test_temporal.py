"""Temporal filters: they remove flicker, keep the current frame where the warp is not
trusted, and do not ghost on motion."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle.evaluate import warping_errors
from vidstyle.temporal.blend import (
    FILTER_MODES,
    BlendFilter,
    FlowFilter,
    GradientFilter,
    LongTermFilter,
    make_temporal_filter,
    screened_lowpass,
    structure_weight,
)
from vidstyle.temporal.flow import FlowConfidence

PHOTOS = Path(__file__).parent.parent / "samples" / "photos"
SIZE = 128


def photo(name: str = "fruits.jpg") -> np.ndarray:
    image = cv2.imread(str(PHOTOS / name))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def panning_frames(count: int = 8, step: tuple[int, int] = (3, 2)) -> list[np.ndarray]:
    """A window sliding over a real photo: pure translation, no occlusion inside."""
    image = photo()
    return [
        image[
            40 + i * step[1] : 40 + i * step[1] + SIZE, 60 + i * step[0] : 60 + i * step[0] + SIZE
        ].copy()
        for i in range(count)
    ]


def consistent_style(frame: np.ndarray) -> torch.Tensor:
    """A per-pixel 'style' (channel swap + gamma): same pixel in, same pixel out."""
    x = torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1).float() / 255.0
    return x**0.6


def flickering_style(frame: np.ndarray, index: int) -> torch.Tensor:
    """`consistent_style` plus fresh noise every frame, like a network's texture flicker."""
    noise = torch.randn(3, *frame.shape[:2], generator=torch.Generator().manual_seed(index))
    return (consistent_style(frame) + 0.08 * noise).clamp(0, 1)


def run(temporal, frames: list[np.ndarray], styled: list[torch.Tensor]) -> list[np.ndarray]:
    outputs = []
    for content, image in zip(frames, styled, strict=True):
        out = temporal(content, image) if temporal else image
        outputs.append((out.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
    return outputs


def test_off_is_no_filter_and_unknown_mode_is_refused():
    assert make_temporal_filter("off", 0.5) is None
    assert isinstance(make_temporal_filter("blend", 0.5), BlendFilter)
    assert isinstance(make_temporal_filter("flow", 0.5), FlowFilter)
    assert make_temporal_filter("flow", 0.5).structure_alpha == 0.0  # off by default
    assert make_temporal_filter("flow", 0.5, 5.0).structure_alpha == 5.0
    with pytest.raises(ValueError, match="unknown temporal mode"):
        make_temporal_filter("median", 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        make_temporal_filter("flow", 1.5)


@pytest.mark.parametrize("mode", FILTER_MODES)
@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 5), (11, 11), (1920, 2), (2, 400)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_mode_calms_the_flicker_of_a_still_frame_of_any_size(mode, size):
    # Issue 40: DIS refused frames under 12 px; the flow filter stretches them for the
    # flow (flow.py, `dis_on_enlarged`). A still input whose network output flickers is
    # the filter's whole purpose: each mode that filters pulls the second output towards
    # the first exactly as far as its strength says.
    width, height = size
    rng = np.random.default_rng(5)
    content = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    first, second = (torch.rand(3, height, width, generator=torch.Generator().manual_seed(i))
                     for i in (1, 2))
    temporal = make_temporal_filter(mode, 0.9)
    if temporal is None:
        assert mode == "off"
        return
    out = temporal(content, first)
    assert torch.equal(out, first)  # nothing to blend with yet
    out = temporal(content.copy(), second)
    assert out.shape == second.shape
    assert torch.allclose(out, torch.lerp(second, first, 0.9), atol=0.02)


def test_blend_is_an_exponential_moving_average_and_reset_forgets():
    blend = BlendFilter(0.25)
    content = np.zeros((4, 4, 3), np.uint8)
    first, second = torch.zeros(3, 4, 4), torch.ones(3, 4, 4)
    assert torch.equal(blend(content, first), first)
    assert torch.allclose(blend(content, second), torch.full((3, 4, 4), 0.75))
    blend.reset()
    assert torch.equal(blend(content, second), second)


def test_flow_filter_lowers_warping_error_on_motion():
    frames = panning_frames()
    styled = [flickering_style(frame, i) for i, frame in enumerate(frames)]
    off = np.mean(warping_errors(run(None, frames, styled), frames))
    flow = np.mean(warping_errors(run(FlowFilter(0.7), frames, styled), frames))
    assert flow < 0.5 * off


def test_flow_filter_does_not_ghost_where_blend_does():
    """With a flicker-free stylization the flow filter must leave frames (nearly) alone;
    a plain moving average drags the previous, shifted frame along."""
    frames = panning_frames()
    styled = [consistent_style(frame) for frame in frames]
    reference = run(None, frames, styled)

    def deviation(temporal) -> float:
        outputs = run(temporal, frames, styled)
        return float(
            np.mean(
                [np.abs(a.astype(int) - b).mean() for a, b in zip(outputs, reference, strict=True)]
            )
        )

    flow, blend = deviation(FlowFilter(0.7)), deviation(BlendFilter(0.7))
    assert flow < 2.0  # grey levels out of 255
    assert flow < blend / 4


def test_flow_filter_keeps_current_frame_where_warp_is_not_trusted():
    frames = panning_frames(2)
    flow_filter = FlowFilter(0.9, cut_coverage=0.0)  # half the frame untrusted is no cut
    flow_filter(frames[0], torch.zeros(3, SIZE, SIZE))
    weight = np.ones((SIZE, SIZE), np.float32)
    weight[:, : SIZE // 2] = 0.0  # left half "occluded"
    estimate = FlowConfidence(
        flow=np.zeros((SIZE, SIZE, 2), np.float32), confidence=weight, reliable=weight
    )
    current = torch.ones(3, SIZE, SIZE)
    out = flow_filter(frames[1], current, estimate)
    assert torch.equal(out[:, :, : SIZE // 2], current[:, :, : SIZE // 2])
    assert torch.allclose(out[:, :, SIZE // 2 :], torch.full_like(out[:, :, SIZE // 2 :], 0.1))


def test_flow_filter_passes_a_scene_cut_through():
    """After a cut the previous output has nothing to do with the new frame."""
    before = cv2.resize(photo("baboon.jpg"), (SIZE, SIZE))
    after = cv2.resize(photo("building.jpg"), (SIZE, SIZE))
    flow_filter = FlowFilter(0.8)
    flow_filter(before, consistent_style(before))
    out = flow_filter(after, consistent_style(after))
    assert torch.equal(out, consistent_style(after))
    assert flow_filter.cuts == 1


@pytest.mark.parametrize(("round_trip", "boundary"), [(True, 0.002), (False, 0.002),
                                                     (False, math.inf)])
def test_consecutive_real_frames_are_not_a_cut_and_a_real_cut_is(samples, round_trip,
                                                                 boundary):
    from helpers import decoded_frames

    frames = [f.to_ndarray(format="rgb24") for f in decoded_frames(samples / "cup.mp4")[:3]]
    flow_filter = FlowFilter(0.8, flow_round_trip=round_trip, boundary_absolute=boundary)
    for frame in frames:
        flow_filter(frame, consistent_style(frame))
    assert flow_filter.cuts == 0
    assert flow_filter.estimate(frames[1], frames[2]).coverage > 1.2 * flow_filter.cut_coverage
    other = cv2.resize(photo("baboon.jpg"), frames[0].shape[1::-1])
    flow_filter(other, consistent_style(other))
    assert flow_filter.cuts == 1


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
    one_step = FlowFilter(1.0, cut_coverage=0.0)
    one_step(frames[0], torch.zeros(3, SIZE, SIZE))
    one_step(frames[1], torch.ones(3, SIZE, SIZE), hidden)
    single = one_step(frames[2], torch.ones(3, SIZE, SIZE), hidden)
    assert float(out.mean()) < float(single.mean()) - 0.3


def test_estimates_running_concurrently_match_serial_ones():
    """The engine estimates flow in a worker thread while the filter runs: one filter's
    `estimate` must give the serial answer with several calls in flight at once."""
    frames = panning_frames(6)
    flow_filter = FlowFilter(0.6)
    pairs = list(zip(frames[:-1], frames[1:], strict=True))
    serial = [flow_filter.estimate(a, b) for a, b in pairs]
    with ThreadPoolExecutor(max_workers=len(pairs)) as pool:
        futures = [pool.submit(flow_filter.estimate, a, b) for a, b in pairs * 3]
        concurrent = [f.result() for f in futures]
    for index, estimate in enumerate(concurrent):
        expected = serial[index % len(pairs)]
        np.testing.assert_allclose(estimate.confidence, expected.confidence)
        np.testing.assert_allclose(estimate.flow, expected.flow)


def test_flow_filter_restarts_when_the_frame_size_changes():
    flow_filter = FlowFilter(0.8)
    small = panning_frames(1)[0]
    flow_filter(small, consistent_style(small))
    big = cv2.resize(small, (SIZE * 2, SIZE))
    styled = consistent_style(big)
    assert torch.equal(flow_filter(big, styled), styled)


def test_flow_at_reduced_resolution_still_tracks_motion():
    frames = [
        cv2.resize(f, (SIZE * 2, SIZE * 2), interpolation=cv2.INTER_CUBIC)
        for f in panning_frames(2)
    ]
    flow_filter = FlowFilter(0.6, flow_max_size=SIZE)
    estimate = flow_filter.estimate(frames[0], frames[1])
    # The window slid right/down by (6, 4) px at this scale: the pixel at x in the current
    # frame was at x + (6, 4) in the previous one.
    centre = estimate.flow[SIZE // 2 : -SIZE // 2, SIZE // 2 : -SIZE // 2]
    np.testing.assert_allclose(np.median(centre.reshape(-1, 2), axis=0), [6, 4], atol=0.5)
    assert estimate.confidence.mean() > 0.5


def test_one_way_flow_costs_one_estimate_and_still_trusts_a_clean_pan(monkeypatch):
    from vidstyle.temporal import flow as flow_module

    frames = panning_frames(2)
    calls = []
    estimator = flow_module.FlowEstimator()
    counting = lambda a, b: calls.append(1) or estimator(a, b)  # noqa: E731
    both = flow_module.flow_with_confidence(frames[0], frames[1], counting)
    assert len(calls) == 2
    one = flow_module.flow_with_confidence(frames[0], frames[1], counting, round_trip=False)
    assert len(calls) == 3
    np.testing.assert_array_equal(one.flow, both.flow)  # the same backward flow
    centre = (slice(16, -16), slice(16, -16))
    assert one.confidence[centre].mean() > 0.8
    # Without the round-trip test the confidence can only be as high or higher.
    assert (one.confidence >= both.confidence - 1e-6).all()


def test_one_way_flow_filter_still_removes_flicker_on_a_pan():
    frames = panning_frames()
    styled = [flickering_style(f, i) for i, f in enumerate(frames)]
    plain = np.mean(warping_errors(run(None, frames, styled), frames))
    one_way = np.mean(warping_errors(run(FlowFilter(0.7, flow_round_trip=False), frames,
                                         styled), frames))
    assert one_way < 0.5 * plain


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
        temporal = FlowFilter(0.9, cut_coverage=0.0, uncover_memory=memory)
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


def test_the_coarse_picture_test_ignores_fine_flicker_and_catches_a_dragged_halo():
    base = consistent_style(panning_frames(1)[0])
    generator = torch.Generator().manual_seed(3)
    flicker = (base + 0.15 * torch.randn(base.shape, generator=generator)).clamp(0, 1)
    weight = structure_weight(flicker, base, alpha=50.0, scale=8)
    assert float(weight.min()) > 0.6  # fine noise averages away within 8 px blocks
    halo = base.clone()
    halo[:, 30:60, 40:90] = (halo[:, 30:60, 40:90] + 0.35).clamp(0, 1)
    weight = structure_weight(base, halo, alpha=50.0, scale=8)
    assert float(weight[38:52, 50:80].max()) < 0.2
    assert float(weight[90:, :].min()) > 0.99  # untouched elsewhere
    assert weight.shape == base.shape[-2:]


def test_the_structure_test_lets_the_filter_drop_a_past_that_no_longer_fits():
    frames = panning_frames(2)
    styled = [consistent_style(frame) for frame in frames]
    past = styled[0].clone()
    past[:, 20:70, 20:70] = 1.0  # a bright block the current frame has no trace of
    plain, checked = FlowFilter(0.95), FlowFilter(0.95, structure_alpha=50.0)
    for temporal in (plain, checked):
        temporal(frames[0], past)
    inside = (slice(None), slice(35, 55), slice(35, 55))
    kept_plain = float((plain(frames[1], styled[1]) - styled[1])[inside].abs().mean())
    kept_checked = float((checked(frames[1], styled[1]) - styled[1])[inside].abs().mean())
    assert kept_checked < 0.3 * kept_plain


def test_the_relative_structure_test_forgives_the_networks_own_coarse_change():
    size = (3, 64, 64)
    current = torch.full(size, 0.8)
    smoothed = torch.full(size, 0.5)  # the filter's past, between two flickering frames
    network_before = torch.full(size, 0.2)  # the network's own previous frame, far off
    plain = structure_weight(current, smoothed, 5.0, 16)
    relative = structure_weight(current, smoothed, 5.0, 16, network_before)
    assert float(plain.max()) < 0.3  # the plain test drops the past: flicker comes back
    assert float(relative.min()) > 0.99  # the network changed more than the past did
    wall = torch.full(size, 0.2)  # the network paints the same wall in both frames
    drifted = wall.clone()
    drifted[:, :32] = 1.0  # a halo the filter's past dragged onto the wall
    weight = structure_weight(wall, drifted, 5.0, 16, wall.clone())
    assert float(weight[:16].max()) < 0.01  # the drifted past is still dropped
    assert float(weight[48:].min()) > 0.99  # and the wall it fits is kept


def test_the_relative_filter_still_pulls_a_coarse_flicker_back():
    frames = panning_frames(2)
    styled = [consistent_style(frame) for frame in frames]
    flickered = (styled[1] + 0.3).clamp(0, 1)  # the network brightens the whole frame
    outputs = {}
    for relative in (False, True):
        temporal = FlowFilter(0.95, structure_alpha=5.0, structure_relative=relative)
        temporal(frames[0], styled[0])
        outputs[relative] = temporal(frames[1], flickered)
        assert temporal.previous_styled is (flickered if relative else None)
    target = float(styled[1].mean())
    plain_left = abs(float(outputs[False].mean()) - target)
    relative_left = abs(float(outputs[True].mean()) - target)
    assert relative_left < 0.5 * plain_left
