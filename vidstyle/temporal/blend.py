"""Temporal filters for feed-forward stylization: calm the frame-to-frame flicker.

A style network run frame by frame reacts to tiny changes of its input (noise, compression,
lighting) with large changes of its texture, which shows as flicker. These filters run after
the network, one frame at a time and in order, and pull each stylized frame towards the
previous *output*:

* `blend`: an exponential moving average with the previous output. Cheap, but anything that
  moves leaves a ghost trail.
* `flow`: the previous output is first warped along the optical flow of the input frames,
  then blended in as far as the warp can be trusted: the photometric weight of Lai et al.
  2018 (`warp_confidence` in flow.py, without Sundaram et al.'s round-trip and
  motion-boundary tests). Where the input itself changed (occlusion, a flash, a flow error)
  the current stylized frame is kept, which is what stops the ghosts; at a scene cut the
  filter starts over.

Both are recursive (they blend with the previous output, not the previous network frame), so
`strength` s gives frames k steps back a weight s^k: the effective memory is 1 / (1 - s)
frames. The filters, flows and knobs that were measured against these and lost live in
benchmarks/temporal_lab.py, their story in docs/research/.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.temporal.flow import (
    PHOTOMETRIC_CUT_COVERAGE,
    FlowConfidence,
    FlowEstimator,
    flow_with_confidence,
    warp_backward_tensor,
)

# The filter's flow: DIS medium at the frame's own size, one way (current -> previous).
# At full size the warp lands where the viewer looks: on cup.mp4 (640x480, scream, strength
# 0.95) ratio 0.61 at full size against 1.91 at 320 px (docs/research/
# 2026-12-01-filter-design-sweep.md). Smoother or edge-aware flows followed the synthetic
# clips' true motion better and real footage worse (docs/research/2026-12-02-a-better-flow.md).
FLOW_PRESET = "medium"
# No round-trip test: the filter costs 52-60% as much and left as little flicker or less on
# every clip of the corpus (docs/research/2026-12-01-one-way-flow.md). No motion-boundary
# test either: DIS's patch noise crossed Sundaram et al.'s allowance away from any boundary,
# and those pixels took the raw network frame; without it the median eval ratio fell 6.01 ->
# 2.88 over the tuning rows, better on every row by both measures, and occlusions are left
# to the photometric weight (docs/research/2026-12-02-motion-boundary-test.md).
FLOW_ROUND_TRIP = False
BOUNDARY_ABSOLUTE = math.inf
# The coarse-picture test (`structure_weight`, `Settings.temporal_structure`): 0 = off.
# At alpha 5 over 16 px blocks it cuts crossing's trail behind moving objects 1.7-2.3x
# with all seven styles and keeps 3-8% more of the network's texture at full size. Off by
# default: over the 13-clip corpus it costs preset 7 and udnie 1.21x the flicker by eval
# and independent; the other five styles 1.03-1.08x
# (docs/research/2026-12-04-coarse-picture-test.md).
STRUCTURE_ALPHA = 0.0
STRUCTURE_SCALE = 16

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


class FlowFilter(TemporalFilter):
    """Blend with the previous output warped along the flow, as far as the warp is trusted.

    ``out_t = styled_t + s * C_t * (warp(out_{t-1}) - styled_t)`` with `C_t` the photometric
    confidence of the warp (`flow_with_confidence`), lowered by the coarse-picture test
    where `structure_alpha` is set. Where C_t is 0 (occluded, a cut) the current stylized
    frame passes through unchanged; a frame whose mean confidence is under
    `PHOTOMETRIC_CUT_COVERAGE` is a scene cut and restarts the filter.

    `estimate(previous_content, content)` needs only the two input frames, so an engine can
    compute it off the critical path (in a thread, while the network runs) and pass it to
    `__call__(content, styled, estimate)`; it is thread-safe (one flow estimator per thread).
    """

    def __init__(self, strength: float, *, structure_alpha: float = STRUCTURE_ALPHA) -> None:
        super().__init__(strength)
        self.structure_alpha = structure_alpha
        self.cut_coverage = PHOTOMETRIC_CUT_COVERAGE
        self.previous_content: np.ndarray | None = None
        self.cuts = 0  # scene cuts seen since construction
        self._local = threading.local()

    def reset(self) -> None:
        super().reset()
        self.previous_content = None

    def estimate(self, previous_content: np.ndarray, content: np.ndarray) -> FlowConfidence:
        """Flow current -> previous input frame and the per-pixel trust in the warp."""
        return flow_with_confidence(previous_content, content, self._estimator(),
                                    round_trip=FLOW_ROUND_TRIP,
                                    boundary_absolute=BOUNDARY_ABSOLUTE)

    def __call__(
        self, content: np.ndarray, styled: torch.Tensor, estimate: FlowConfidence | None = None
    ) -> torch.Tensor:
        if self._has_usable_past(styled) and self._same_size(content):
            if estimate is None:
                estimate = self.estimate(self.previous_content, content)
            if estimate.coverage < self.cut_coverage:
                self.cuts += 1
            else:
                styled = self._blend(styled, estimate)
        self.previous_content = content
        self.previous_output = styled
        return styled

    def _blend(self, styled: torch.Tensor, estimate: FlowConfidence) -> torch.Tensor:
        current = styled.float()
        weight = torch.from_numpy(estimate.confidence).to(styled.device)
        previous = self.previous_output.to(styled.device, torch.float32)
        warped = warp_backward_tensor(previous.unsqueeze(0), estimate.flow)[0]
        if self.structure_alpha > 0.0:
            weight = weight * structure_weight(current, warped, self.structure_alpha,
                                               STRUCTURE_SCALE)
        return (current + self.correction(weight * (warped - current))).to(styled.dtype)

    def correction(self, difference: torch.Tensor) -> torch.Tensor:
        """How much of the confidence-weighted pull towards the warped past is applied."""
        return self.strength * difference

    def _same_size(self, content: np.ndarray) -> bool:
        previous = self.previous_content
        return previous is not None and previous.shape == content.shape

    def _estimator(self) -> FlowEstimator:
        # An OpenCV DIS object is not safe to share between threads.
        estimator = getattr(self._local, "estimator", None)
        if estimator is None:
            estimator = self._local.estimator = self.new_estimator()
        return estimator

    def new_estimator(self) -> FlowEstimator:
        """The flow estimator of one thread."""
        return FlowEstimator("dis", FLOW_PRESET)


def structure_weight(current: torch.Tensor, warped: torch.Tensor, alpha: float,
                     scale: int) -> torch.Tensor:
    """Trust in the warped past output as far as its coarse picture (means over `scale` x
    `scale` blocks) agrees with the current stylized frame's: ``exp(-alpha * gap^2)``.

    A network's flicker is fine texture, which block means average away; a past output
    dragged along a wrong flow (a halo carried up a flat wall, the photometric test passing
    because wall matches wall) differs from the current frame in the coarse picture too."""
    coarse = F.avg_pool2d(torch.stack((current, warped)), scale, ceil_mode=True)
    gap = ((coarse[0] - coarse[1]) ** 2).sum(0, keepdim=True)
    return gap_weight(gap, alpha, current.shape[-2:])


def gap_weight(gap: torch.Tensor, alpha: float, size: tuple[int, int]) -> torch.Tensor:
    """``exp(-alpha * gap)`` at the frame's `size` from a ``1 x h x w`` gap of block means."""
    gap = F.interpolate(gap[None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return torch.exp(-alpha * gap)


def make_temporal_filter(mode: str, strength: float,
                         structure: float = STRUCTURE_ALPHA) -> TemporalFilter | None:
    """The filter for `Settings.temporal` (None for "off") at `Settings.temporal_strength`,
    with `Settings.temporal_structure` as the flow filter's coarse-picture test."""
    if mode == "off":
        return None
    if mode == "blend":
        return BlendFilter(strength)
    if mode == "flow":
        return FlowFilter(strength, structure_alpha=structure)
    raise ValueError(f"unknown temporal mode {mode!r}: choose one of {', '.join(FILTER_MODES)}")
