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
    BlendFilter,
    FlowEstimate,
    FlowFilter,
    make_temporal_filter,
)

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
    with pytest.raises(ValueError, match="unknown temporal mode"):
        make_temporal_filter("median", 0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        make_temporal_filter("flow", 1.5)


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
    weight[:, : SIZE // 2] = 0.0  # left half "occluded"
    estimate = FlowEstimate(flow=np.zeros((SIZE, SIZE, 2), np.float32), weight=weight)
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
    changed = (out - consistent_style(after)).abs() > 2 / 255
    assert changed.float().mean() < 0.02


def test_estimate_is_the_same_from_a_worker_thread():
    frames = panning_frames(2)
    flow_filter = FlowFilter(0.6)
    direct = flow_filter.estimate(frames[0], frames[1])
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = pool.submit(flow_filter.estimate, frames[0], frames[1]).result()
    np.testing.assert_allclose(threaded.weight, direct.weight)
    np.testing.assert_allclose(threaded.flow, direct.flow)


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
    assert estimate.weight.mean() > 0.5
