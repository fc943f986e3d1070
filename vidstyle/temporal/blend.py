"""Temporal filters for feed-forward stylization: calm the frame-to-frame flicker.

A style network run frame by frame reacts to tiny changes of its input (noise, compression,
lighting) with large changes of its texture, which shows as flicker. These filters run after
the network, one frame at a time and in order, and pull each stylized frame towards the
previous *output*:

* `blend`: an exponential moving average with the previous output. Cheap, but anything that
  moves leaves a ghost trail.
* `flow`: the previous output is first warped along the optical flow of the input frames,
  then blended in only where the warp can be trusted. Trust is the product of the
  forward-backward consistency mask (Sundaram et al. 2010, as in Ruder et al. 2016) and a
  per-pixel weight that decays with the photometric error of the same warp applied to the
  input frames, ``exp(-alpha * ||I_t - warp(I_{t-1})||^2)`` (Lai et al. 2018, eq. 5, alpha =
  50). Where the input itself changed (occlusion, a cut, a flash, a flow error) the current
  stylized frame is kept, which is what stops the ghosts.

Both are recursive (they blend with the previous output, not the previous network frame), so
`strength` s gives frames k steps back a weight s^k: the effective memory is 1 / (1 - s)
frames. See docs/temporal.md for the measured trade-off.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vidstyle.temporal.flow import (
    FlowEstimator,
    reliability_mask,
    warp_backward,
    warp_backward_tensor,
)

# Lai et al. 2018 (sec. 3.2) weight their short-term temporal loss with
# exp(-alpha * ||I_t - warp(I_{t-1})||^2) on RGB in [0, 1], alpha = 50: a warp that misses
# by 0.1 per channel keeps ~22% of its weight, one that misses by 0.2 keeps ~0.2%.
PHOTOMETRIC_ALPHA = 50.0
# Flow is estimated with the long side at most this many pixels and scaled up: the blend
# needs the motion, not its finest detail. 320 beat 640 on every count measured: on cup.mp4
# (640x480, scream) warping-error ratio 0.89 against 3.95 and content distance 0.608
# against 0.635 (finer DIS flow is noisier, so the consistency mask rejects more of it);
# on bigbuckbunny at 640x360 (preset 7) 0.88 against 1.05 at equal content distance; and
# DIS at 320 px takes a quarter of the time (docs/temporal.md).
FLOW_MAX_SIZE = 320

FILTER_MODES = ("off", "blend", "flow")


class TemporalFilter:
    """Stateful per-frame filter: call it on each stylized frame in display order.

    `__call__(content, styled)` takes the input frame (RGB uint8 ``H x W x 3`` numpy) and
    the network's output for it (float ``3 x H x W`` in [0, 1], any device) and returns the
    filtered frame (same shape, device and dtype). `reset()` forgets the past (new video or
    a cut).
    """

    def __init__(self, strength: float) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"temporal strength must be between 0 and 1, got {strength}")
        self.strength = strength
        self.previous_output: torch.Tensor | None = None

    def reset(self) -> None:
        self.previous_output = None

    def __call__(self, content: np.ndarray, styled: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _has_usable_past(self, styled: torch.Tensor) -> bool:
        """False on the first frame, or when the frame size changed (a new video)."""
        previous = self.previous_output
        return previous is not None and previous.shape == styled.shape


class BlendFilter(TemporalFilter):
    """Exponential moving average: ``out_t = (1 - s) * styled_t + s * out_{t-1}``."""

    def __call__(self, content: np.ndarray, styled: torch.Tensor) -> torch.Tensor:
        if self._has_usable_past(styled):
            previous = self.previous_output.to(styled.device, styled.dtype)
            styled = torch.lerp(styled, previous, self.strength)
        self.previous_output = styled
        return styled


@dataclass
class FlowEstimate:
    """What the flow filter needs to bring the previous output to the current frame.

    `flow` is current -> previous (``H x W x 2`` float32, pixels); `weight` (``H x W``
    float32 in [0, 1]) is how much the warped previous output can be trusted at each pixel,
    before `strength` is applied.
    """

    flow: np.ndarray
    weight: np.ndarray


class FlowFilter(TemporalFilter):
    """Blend with the previous output warped along the flow, where the warp is reliable.

    ``out_t = styled_t + s * W_t * (warp(out_{t-1}) - styled_t)`` with `W_t` from
    `estimate` (consistency mask x photometric weight). Where W_t is 0 (occluded, a cut) the
    current stylized frame passes through unchanged.

    `estimate(previous_content, content)` needs only the two input frames, so an engine can
    compute it off the critical path (in a thread, while the network runs) and pass it to
    `__call__(content, styled, estimate)`; it is thread-safe (one flow estimator per thread).
    """

    def __init__(
        self,
        strength: float,
        *,
        alpha: float = PHOTOMETRIC_ALPHA,
        flow_max_size: int | None = FLOW_MAX_SIZE,
        flow_method: str = "dis",
    ) -> None:
        super().__init__(strength)
        self.alpha = alpha
        self.flow_max_size = flow_max_size
        self.flow_method = flow_method
        self.previous_content: np.ndarray | None = None
        self._local = threading.local()

    def reset(self) -> None:
        super().reset()
        self.previous_content = None

    def estimate(self, previous_content: np.ndarray, content: np.ndarray) -> FlowEstimate:
        """Flow current -> previous input frame and the per-pixel trust in the warp.

        Everything is computed with the long side at most `flow_max_size` and scaled up, so
        the cost does not grow with the video's resolution.
        """
        height, width = content.shape[:2]
        small = fit_long_side(height, width, self.flow_max_size)
        current, previous = resize_image(content, small), resize_image(previous_content, small)
        estimator = self._estimator()
        flow_back, flow_forward = estimator(current, previous), estimator(previous, current)
        # The hard consistency mask, not an eroded/feathered one: on cup.mp4 with a real style
        # network, eroding it by 2 px and feathering the edge left the rim flickering at full
        # strength (warping-error ratio 116 instead of 20 at strength 0.85). The photometric
        # weight already fades the blend out smoothly where the warp starts to miss.
        weight = reliability_mask(flow_back, flow_forward) * photometric_weight(
            current, previous, flow_back, self.alpha
        )
        if small != (height, width):
            flow_back = upscale_flow(flow_back, (height, width))
            weight = cv2.resize(weight, (width, height), interpolation=cv2.INTER_LINEAR)
        return FlowEstimate(flow=flow_back, weight=weight)

    def __call__(
        self, content: np.ndarray, styled: torch.Tensor, estimate: FlowEstimate | None = None
    ) -> torch.Tensor:
        if self._has_usable_past(styled) and self._same_size(content):
            if estimate is None:
                estimate = self.estimate(self.previous_content, content)
            styled = self._blend(styled, estimate)
        self.previous_content = content
        self.previous_output = styled
        return styled

    def _blend(self, styled: torch.Tensor, estimate: FlowEstimate) -> torch.Tensor:
        previous = self.previous_output.to(styled.device, torch.float32).unsqueeze(0)
        warped = warp_backward_tensor(previous, estimate.flow)[0]
        weight = torch.from_numpy(estimate.weight).to(styled.device)
        current = styled.float()
        return (current + (self.strength * weight) * (warped - current)).to(styled.dtype)

    def _same_size(self, content: np.ndarray) -> bool:
        previous = self.previous_content
        return previous is not None and previous.shape == content.shape

    def _estimator(self) -> FlowEstimator:
        # An OpenCV DIS object is not safe to share between threads.
        estimator = getattr(self._local, "estimator", None)
        if estimator is None:
            estimator = self._local.estimator = FlowEstimator(self.flow_method)
        return estimator


def make_temporal_filter(mode: str, strength: float) -> TemporalFilter | None:
    """The filter for `Settings.temporal` (None for "off") at `Settings.temporal_strength`."""
    if mode == "off":
        return None
    if mode == "blend":
        return BlendFilter(strength)
    if mode == "flow":
        return FlowFilter(strength)
    raise ValueError(f"unknown temporal mode {mode!r}: choose one of {', '.join(FILTER_MODES)}")


def photometric_weight(
    content: np.ndarray, previous_content: np.ndarray, flow_back: np.ndarray, alpha: float
) -> np.ndarray:
    """``exp(-alpha * ||I_t - warp(I_{t-1})||^2)`` per pixel, RGB in [0, 1] (Lai et al.)."""
    current = content.astype(np.float32) / 255.0
    warped = warp_backward(previous_content.astype(np.float32) / 255.0, flow_back)
    error = ((current - warped) ** 2).sum(axis=-1)
    return np.exp(-alpha * error).astype(np.float32)


def fit_long_side(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(height, width) shrunk so the long side is at most `size`; never enlarged."""
    if not size or max(height, width) <= size:
        return height, width
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_image(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize to (height, width): area filter when shrinking (no aliasing), else cubic."""
    if image.shape[:2] == shape:
        return image
    shrinking = shape[0] * shape[1] < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(image, (shape[1], shape[0]), interpolation=interpolation)


def upscale_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a flow field to (height, width), scaling the vectors with the pixels."""
    height, width = flow.shape[:2]
    big = cv2.resize(flow, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    big[..., 0] *= shape[1] / width
    big[..., 1] *= shape[0] / height
    return big
