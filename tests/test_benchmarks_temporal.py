"""benchmarks/temporal.py: the content and texture meter measures where it says it does."""

from __future__ import annotations

import cv2
import numpy as np

from benchmarks.temporal import VggMeter


def pictures(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [cv2.resize(rng.integers(0, 256, (12, 18, 3)).astype(np.uint8), (96, 64),
                       interpolation=cv2.INTER_CUBIC) for _ in range(count)]


def speckled(image: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image.astype(int) + rng.integers(-60, 61, image.shape), 0, 255).astype(np.uint8)


def test_own_size_measures_the_last_frame_at_the_frames_size():
    frames, styled = pictures(4), pictures(4, seed=1)
    meter = VggMeter(frames, styled, size=0)
    assert meter.indices == [3]
    assert tuple(meter.tensor(styled[0]).shape[-2:]) == (64, 96)
    _, unchanged = meter(styled)
    assert unchanged < 1e-6
    # Only the last frame is looked at: a change to the first is not seen, one to the last is.
    _, first_changed = meter([speckled(styled[0], 2), *styled[1:]])
    _, last_changed = meter([*styled[:3], speckled(styled[3], 2)])
    assert first_changed < 1e-6
    assert last_changed > 1e-4


def test_a_set_size_scales_the_long_side_and_samples_across_the_clip():
    frames, styled = pictures(4), pictures(4, seed=1)
    meter = VggMeter(frames, styled, size=48)
    assert tuple(meter.tensor(styled[0]).shape[-2:]) == (32, 48)
    assert len(meter.indices) == 2 and meter.indices[0] != meter.indices[-1]
