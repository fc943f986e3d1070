"""Temporal filters: they remove flicker, keep the current frame where the warp is not
trusted, and do not ghost on motion."""

from __future__ import annotations

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
    make_temporal_filter,
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
    flow_filter = FlowFilter(0.9)
    flow_filter(frames[0], torch.zeros(3, SIZE, SIZE))
    weight = np.ones((SIZE, SIZE), np.float32)
    strip = SIZE // 8
    weight[:, :strip] = 0.0  # a strip "occluded": too little of the frame for a cut
    assert weight.mean() > flow_filter.cut_coverage
    estimate = FlowConfidence(
        flow=np.zeros((SIZE, SIZE, 2), np.float32), confidence=weight, reliable=weight
    )
    current = torch.ones(3, SIZE, SIZE)
    out = flow_filter(frames[1], current, estimate)
    assert torch.equal(out[:, :, :strip], current[:, :, :strip])
    assert torch.allclose(out[:, :, strip:], torch.full_like(out[:, :, strip:], 0.1))


def test_flow_filter_passes_a_scene_cut_through():
    """After a cut the previous output has nothing to do with the new frame."""
    before = cv2.resize(photo("baboon.jpg"), (SIZE, SIZE))
    after = cv2.resize(photo("building.jpg"), (SIZE, SIZE))
    flow_filter = FlowFilter(0.8)
    flow_filter(before, consistent_style(before))
    out = flow_filter(after, consistent_style(after))
    assert torch.equal(out, consistent_style(after))
    assert flow_filter.cuts == 1


def test_consecutive_real_frames_are_not_a_cut_and_a_real_cut_is(samples):
    check_cuts(FlowFilter(0.8), samples)


def check_cuts(flow_filter: FlowFilter, samples: Path) -> None:
    """Three frames of a real clip are no cut; a different photo after them is one."""
    from helpers import decoded_frames

    frames = [f.to_ndarray(format="rgb24") for f in decoded_frames(samples / "cup.mp4")[:3]]
    for frame in frames:
        flow_filter(frame, consistent_style(frame))
    assert flow_filter.cuts == 0
    assert flow_filter.estimate(frames[1], frames[2]).coverage > 1.2 * flow_filter.cut_coverage
    other = cv2.resize(photo("baboon.jpg"), frames[0].shape[1::-1])
    flow_filter(other, consistent_style(other))
    assert flow_filter.cuts == 1


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


def test_the_one_way_flow_filter_removes_flicker_on_a_pan():
    frames = panning_frames()
    styled = [flickering_style(f, i) for i, f in enumerate(frames)]
    plain = np.mean(warping_errors(run(None, frames, styled), frames))
    one_way = np.mean(warping_errors(run(FlowFilter(0.7), frames, styled), frames))
    assert one_way < 0.5 * plain


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


