"""Temporal filters for feed-forward stylization: calm the frame-to-frame flicker.

A style network run frame by frame reacts to tiny changes of its input (noise, compression,
lighting) with large changes of its texture, which shows as flicker. These filters run after
the network, one frame at a time and in order, and pull each stylized frame towards the
previous *output*:

* `blend`: an exponential moving average with the previous output. Cheap, but anything that
  moves leaves a ghost trail.
* `flow`: the previous output is first warped along the optical flow of the input frames,
  then blended in as far as the warp can be trusted: the soft confidence of
  `flow_with_confidence`. By default that is the photometric weight of Lai et al. 2018
  alone (one-way flow, no round-trip or motion-boundary test: `FLOW_ROUND_TRIP`,
  `BOUNDARY_ABSOLUTE`); Sundaram et al.'s tests can be turned back on. Where the input
  itself changed (occlusion, a flash, a flow error) the current stylized frame is kept,
  which is what stops the ghosts; at a scene cut the filter starts over.

Both are recursive (they blend with the previous output, not the previous network frame), so
`strength` s gives frames k steps back a weight s^k: the effective memory is 1 / (1 - s)
frames. `GradientFilter` (Bonneel et al. 2015) and `LongTermFilter` (Ruder et al. 2016)
were measured and lost (docs/temporal.md); they stay for the benchmark.
"""

from __future__ import annotations

import math
import threading
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.temporal.flow import (
    PHOTOMETRIC_ALPHA,
    FlowConfidence,
    FlowEstimator,
    cut_coverage_for,
    flow_with_confidence,
    warp_backward_tensor,
)

# Long side (pixels) the filter's flow is estimated at; None = the frame's own size. At
# full size the warp lands where the viewer looks: on cup.mp4 (640x480, scream, strength
# 0.95) ratio 0.61 at full size against 1.91 at 320 px and texture change 0.017 vs 0.052
# (DIS-medium measure); on vtest with preset:19 the independent Farneback check gives 6.10
# at full size against 7.79 at 320 px (docs/temporal.md).
FLOW_MAX_SIZE: int | None = None
# DIS preset of the filter's flow. Round 10's "edge" (DIS medium smoothed edge-aware where
# the frames leave the motion open; flow.py) is not the default: along the true motion of
# the synthetic clips the filter following it left less flicker on all 10 rows (median
# 6.95 -> 4.71), but on real footage the independent measure called it worse on 9 of 14
# rows (held-out box preset:19 1.02 -> 1.38) and the still background of vtest, which no
# flow's error can bias, flickered more (preset:19 2.32 -> 2.71). The synthetic clips are
# still photos under a camera move, where smoothing cannot be wrong; real scenes are not
# (docs/temporal.md, "Edge-aware flow").
FLOW_PRESET = "medium"
# Whether the confidence includes the forward-backward test, which costs a second flow.
# Without it (occlusions left to the photometric term) the filter costs 52-60% as much and
# left as little flicker or less on every clip of the corpus, tuning and held-out, by both
# measures: scream and preset:19, 12 frames a clip at full size, median ratio 6.71 -> 6.01
# over the 16 tuning rows, 1.69 -> 1.36 over the 4 held-out ones, worst texture change
# 0.123 -> 0.125 and 0.057 -> 0.085 (`python -m benchmarks.temporal sweep ... --configs
# off,flow:0.95,flow:0.95:oneway=1`, docs/temporal.md, "One-way flow").
FLOW_ROUND_TRIP = False
# The constant part of the motion-boundary allowance in the filter's confidence (px^2 per
# px^2); infinity = no motion-boundary test. Sundaram et al.'s 0.002 (the metric keeps it)
# suits an accurate variational flow: DIS's patch noise crosses it away from any boundary,
# and those pixels took the raw network frame. On cup with preset:19 (12 frames) 58% of
# the residual error came from the 6% of pixels under confidence 0.5, and changing the
# photometric alpha from 50 to 5 changed nothing; without the test occlusions are left to
# the photometric weight, which still catches an uncovered strip (tests/test_flow.py).
# Swept at full size, scream and preset:19, 12 frames a clip: median eval ratio 6.01 ->
# 2.88 over the 16 tuning rows, 1.36 -> 0.92 over the 4 held-out ones, better on every row
# by both measures; worst texture change 0.125 -> 0.204 (docs/temporal.md, "Trusting DIS").
BOUNDARY_ABSOLUTE = math.inf
# The global-motion prior (`with_global_motion` in flow.py) is off by default. Along the
# true flow of the synthetic camera moves it was the steadiest filter (zoom preset:19 53.2
# -> 3.70), but on the held-out box both measures called it 10x worse (parallax), and no
# gate tried (snap, validity) kept the gain on held-out footage without that loss
# (docs/temporal.md, "Flicker along the true motion").
GLOBAL_PRIOR: float | None = None

# How much of the "just uncovered" mark survives each frame (`uncovered_weight`); 0 = no
# mark.
UNCOVER_MEMORY = 0.0
# Confidence under which a pixel counts as uncovered (its past was something else).
UNCOVERED_BELOW = 0.25
# How the previous output is resampled along the flow. Each frame's warp is applied again
# to what the last warp left, so a bilinear warp's loss of fine texture at fractional
# offsets compounds over the filter's memory (round 14: with preset 19 at full size the
# filtered frame 7 was 0.40-0.50 in Gram distance from the network's own, against
# 0.04-0.05 for a repainting; docs/temporal.md, "A perfectly steady painting").
WARP_MODE = "bilinear"
# The coarse-picture test (`structure_weight`, `Settings.temporal_structure`): 0 = off.
# At alpha 5 over 16 px blocks it cuts crossing's trail behind moving objects 1.7-2.3x
# with all seven styles (the band up the wall on the held-out bikes nearly gone by eye)
# and keeps 3-8% more of the network's texture at full size. Off by default: over the
# 13-clip corpus it costs preset 7 and udnie 1.21x the flicker by eval and independent,
# and by eval two and one of their clips cross 1.5; the other five styles 1.03-1.08x
# (docs/temporal.md, "The coarse-picture test over every style").
STRUCTURE_ALPHA = 0.0
STRUCTURE_SCALE = 16

FILTER_MODES = ("off", "blend", "flow")

# Kept for callers that name the estimate's type.
FlowEstimate = FlowConfidence


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

    ``out_t = styled_t + s * C_t * (warp(out_{t-1}) - styled_t)`` with `C_t` the soft
    confidence of `flow_with_confidence` (the photometric weight of Lai et al. 2018, and
    where asked the forward-backward and motion-boundary tests of Sundaram et al.). Where
    C_t is 0 (occluded, a cut) the current stylized frame passes through unchanged; a frame
    whose mean confidence is under the threshold that belongs to its confidence
    (`cut_coverage_for`) is a scene cut and restarts the filter.

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
        flow_preset: str = FLOW_PRESET,
        cut_coverage: float | None = None,
        flow_smoothing: float = 0.0,
        flow_round_trip: bool = FLOW_ROUND_TRIP,
        boundary_absolute: float = BOUNDARY_ABSOLUTE,
        global_prior: float | None = GLOBAL_PRIOR,
        global_snap: float = math.inf,
        global_valid: float = math.inf,
        photometric_spread: int = 0,
        uncover_memory: float = UNCOVER_MEMORY,
        warp_mode: str = WARP_MODE,
        structure_alpha: float = STRUCTURE_ALPHA,
        structure_scale: int = STRUCTURE_SCALE,
        structure_relative: bool = False,
    ) -> None:
        super().__init__(strength)
        self.warp_mode = warp_mode
        self.structure_alpha = structure_alpha
        self.structure_scale = structure_scale
        self.structure_relative = structure_relative
        self.previous_styled: torch.Tensor | None = None  # the network's own, unfiltered
        self.photometric_spread = photometric_spread
        self.uncover_memory = uncover_memory
        self.uncovered: torch.Tensor | None = None
        self.boundary_absolute = boundary_absolute
        self.global_prior = global_prior
        self.global_snap = global_snap
        self.global_valid = global_valid
        self.flow_smoothing = flow_smoothing
        self.flow_round_trip = flow_round_trip
        self.alpha = alpha
        self.flow_max_size = flow_max_size
        self.flow_method = flow_method
        self.flow_preset = flow_preset
        # The cut threshold belongs to the confidence it is compared with.
        default_cut = cut_coverage_for(flow_round_trip, boundary_absolute)
        self.cut_coverage = default_cut if cut_coverage is None else cut_coverage
        self.previous_content: np.ndarray | None = None
        self.cuts = 0  # scene cuts seen since construction
        self._local = threading.local()

    def reset(self) -> None:
        super().reset()
        self.previous_content = None
        self.previous_styled = None
        self.uncovered = None

    def estimate(self, previous_content: np.ndarray, content: np.ndarray) -> FlowConfidence:
        """Flow current -> previous input frame and the per-pixel trust in the warp."""
        return flow_with_confidence(
            previous_content,
            content,
            self._estimator(),
            max_size=self.flow_max_size,
            alpha=self.alpha,
            smooth=self.flow_smoothing,
            round_trip=self.flow_round_trip,
            boundary_absolute=self.boundary_absolute,
            global_prior=self.global_prior,
            global_snap=self.global_snap,
            global_valid=self.global_valid,
            photometric_spread=self.photometric_spread,
        )

    def __call__(
        self, content: np.ndarray, styled: torch.Tensor, estimate: FlowConfidence | None = None
    ) -> torch.Tensor:
        network = styled
        if self._has_usable_past(styled) and self._same_size(content):
            if estimate is None:
                estimate = self.estimate(self.previous_content, content)
            if estimate.coverage < self.cut_coverage:
                self.cuts += 1
            else:
                styled = self._blend(styled, estimate)
        self.previous_content = content
        self.previous_output = styled
        if self.structure_relative:
            self.previous_styled = network
        return styled

    def _blend(self, styled: torch.Tensor, estimate: FlowConfidence) -> torch.Tensor:
        current = styled.float()
        weight = torch.from_numpy(estimate.confidence).to(styled.device)
        previous = self.previous_output.to(styled.device, torch.float32)
        relative = self.structure_alpha > 0.0 and self.previous_styled is not None
        if relative:
            # The network's own previous frame rides the same warp (channels 3-5).
            network = self.previous_styled.to(styled.device, torch.float32)
            previous = torch.cat((previous, network))
        remember = self.uncover_memory > 0.0
        if remember and self.uncovered is not None:
            # One warp carries the past output and the uncovered mark along the flow.
            previous = torch.cat((previous, self.uncovered.to(styled.device)[None]))
        warped = warp_backward_tensor(previous.unsqueeze(0), estimate.flow, self.warp_mode)[0]
        if remember:
            mark = 6 if relative else 3
            carried = warped[mark] * self.uncover_memory if warped.shape[0] > mark else None
            weight, self.uncovered = uncovered_weight(weight, carried)
        warped_network = warped[3:6] if relative else None
        warped = warped[:3]
        if self.structure_alpha > 0.0:
            weight = weight * structure_weight(current, warped, self.structure_alpha,
                                               self.structure_scale, warped_network)
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
            estimator = self._local.estimator = FlowEstimator(self.flow_method, self.flow_preset)
        return estimator


class LongTermFilter(FlowFilter):
    """The flow filter with a memory of several previous outputs (Ruder et al. 2016, long-
    term consistency): regions hidden in the last frame but seen a few frames ago are pulled
    towards that older output instead of restarting.

    Frame t-k enters only where the more recent frames do not already cover it: its weight
    is ``max(0, c_k - sum_{j<k} c_j)`` (Ruder et al., eq. 8), so the weights sum to at most
    1. The flows to frames older than t-1 are computed here, on the critical path.
    """

    def __init__(self, strength: float, *, memory: int = 3, **kwargs) -> None:
        super().__init__(strength, **kwargs)
        self.memory = memory
        self.history: deque[tuple[np.ndarray, torch.Tensor]] = deque(maxlen=memory)

    def reset(self) -> None:
        super().reset()
        self.history.clear()

    def __call__(
        self, content: np.ndarray, styled: torch.Tensor, estimate: FlowConfidence | None = None
    ) -> torch.Tensor:
        if self._has_usable_past(styled) and self._same_size(content):
            estimate = estimate or self.estimate(self.previous_content, content)
            if estimate.coverage < self.cut_coverage:
                self.cuts += 1
                self.history.clear()
            else:
                older = [self.estimate(past, content) for past, _ in list(self.history)[1:]]
                styled = self._blend_many(styled, [estimate, *older])
        else:
            self.history.clear()
        self.history.appendleft((content, styled))
        self.previous_content = content
        self.previous_output = styled
        return styled

    def _blend_many(self, styled: torch.Tensor, estimates: list[FlowConfidence]) -> torch.Tensor:
        current = styled.float()
        pull = torch.zeros_like(current)
        covered = torch.zeros(current.shape[-2:], device=current.device)
        for (_, output), estimate in zip(self.history, estimates, strict=False):
            confidence = torch.from_numpy(estimate.confidence).to(current.device)
            weight = (confidence - covered).clamp_(min=0.0)
            previous = output.to(current.device, torch.float32).unsqueeze(0)
            pull += weight * (warp_backward_tensor(previous, estimate.flow)[0] - current)
            covered += weight
        return (current + self.correction(pull)).to(styled.dtype)


class GradientFilter(FlowFilter):
    """Blind temporal consistency in the gradient domain (Bonneel et al. 2015).

    Each output minimises ``||grad O - grad S_t||^2 + lambda ||O - T_t||^2`` with S_t the
    stylized frame and T_t the flow filter's target (warped past where trusted, S_t
    elsewhere). The solution is S_t plus the pull ``T_t - S_t`` low-passed by
    ``lambda / (lambda + |w|^2)``: the frame keeps its own fine gradients (texture) and only
    its coarse tones follow the past. `cutoff` is the wavelength in pixels (sqrt of
    1/lambda, scaled) above which the past wins.
    """

    def __init__(self, strength: float, *, cutoff: float = 8.0, **kwargs) -> None:
        super().__init__(strength, **kwargs)
        self.cutoff = cutoff

    def correction(self, difference: torch.Tensor) -> torch.Tensor:
        return self.strength * screened_lowpass(difference, self.cutoff)


def screened_lowpass(image: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``lambda / (lambda + |w|^2)`` on a ``C x H x W`` tensor, mirrored borders (DCT-like)."""
    channels, height, width = image.shape
    mirrored = torch.cat((image, image.flip(-1)), dim=-1)
    mirrored = torch.cat((mirrored, mirrored.flip(-2)), dim=-2)
    spectrum = torch.fft.rfft2(mirrored)
    fy = torch.fft.fftfreq(2 * height, device=image.device)[:, None]
    fx = torch.fft.rfftfreq(2 * width, device=image.device)[None, :]
    omega2 = (2 * torch.pi) ** 2 * (fx**2 + fy**2)
    lam = (2 * torch.pi / cutoff) ** 2
    filtered = torch.fft.irfft2(spectrum * (lam / (lam + omega2)), s=mirrored.shape[-2:])
    return filtered[..., :height, :width]


def structure_weight(current: torch.Tensor, warped: torch.Tensor, alpha: float,
                     scale: int, warped_network: torch.Tensor | None = None) -> torch.Tensor:
    """Trust in the warped past output as far as its coarse picture (means over `scale` x
    `scale` blocks) agrees with the current stylized frame's: ``exp(-alpha * gap^2)``.

    A network's flicker is fine texture, which block means average away; a past output
    dragged along a wrong flow (a halo carried up a flat wall, the photometric test passing
    because wall matches wall) differs from the current frame in the coarse picture too.
    With `warped_network` (the network's own previous frame, warped the same way) only the
    gap beyond the network's own coarse change counts: a network whose colour patches
    change from frame to frame (udnie, preset 7) differs coarsely from any past, and that
    difference is the flicker to remove, not a drifted past."""
    height, width = current.shape[-2:]
    pasts = (warped,) if warped_network is None else (warped, warped_network)
    coarse = F.avg_pool2d(torch.stack((current, *pasts)), scale, ceil_mode=True)
    gap = ((coarse[0] - coarse[1]) ** 2).sum(0, keepdim=True)
    if warped_network is not None:
        own = ((coarse[0] - coarse[2]) ** 2).sum(0, keepdim=True)
        gap = (gap - own).clamp(min=0.0)
    gap = F.interpolate(gap[None], size=(height, width), mode="bilinear",
                        align_corners=False)[0, 0]
    return torch.exp(-alpha * gap)


def uncovered_weight(
    confidence: torch.Tensor, carried: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The confidence lowered where the frame was uncovered a few frames ago, and the mark.

    Where a moving object has just left, the wall it uncovers gets confidence 0 and takes
    the network's frame, halo round the object included. In the next frames the wall is
    unchanged in the input, so the photometric weight trusts the memory and keeps that halo
    for 1 / (1 - strength) frames: a pale trail behind the object (crossing,
    docs/temporal.md). The mark (1 where the confidence is under `UNCOVERED_BELOW`, then
    carried along the flow and fading by `uncover_memory` a frame) lowers the trust to
    ``confidence * (1 - mark)`` so the memory there follows the network until the object's
    halo has gone.
    """
    mark = (confidence < UNCOVERED_BELOW).float()
    if carried is not None:
        mark = torch.maximum(mark, carried)
    return confidence * (1.0 - mark), mark


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

