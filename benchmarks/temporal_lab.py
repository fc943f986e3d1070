"""The flicker filter's laboratory: the filters, flows and knobs that were measured against
the shipped ones and lost, kept so that `benchmarks.temporal` and `benchmarks.flow` can run
those measurements again. The product (vidstyle/) never imports this module; their story
is in docs/research/.

* `LabFlowFilter`: vidstyle's `FlowFilter` with every knob the sweeps turned (flow size,
  DIS preset, smoothing, round-trip and motion-boundary tests, cut threshold, the
  global-motion prior, a spread photometric weight, the "uncover" mark, bicubic warping,
  the coarse-picture test's block size and its relative form). At its defaults it computes
  exactly what the product's filter computes (tests/test_benchmarks_temporal_lab.py).
* `LongTermFilter` (Ruder et al. 2016) and `GradientFilter` (Bonneel et al. 2015).
* The edge-aware flow (the "edge" preset, `EdgeAwareFlow`): it needs OpenCV's contrib
  modules, `pip install -e ".[lab]"` (opencv-contrib-python-headless); without them it
  warns and follows plain DIS.
* The global-motion prior (`with_global_motion`).
"""

from __future__ import annotations

import math
import warnings
from collections import deque

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.images import fit_long_side, resize_image
from vidstyle.temporal.blend import (
    FLOW_PRESET,
    STRUCTURE_ALPHA,
    STRUCTURE_SCALE,
    FlowFilter,
    gap_weight,
    structure_weight,
)
from vidstyle.temporal.flow import (
    CUT_COVERAGE,
    MOTION_BOUNDARY_ABSOLUTE,
    PHOTOMETRIC_ALPHA,
    PHOTOMETRIC_CUT_COVERAGE,
    FlowConfidence,
    FlowEstimator,
    photometric_error,
    smooth_unit,
    squared_error,
    to_gray,
    upscale_flow,
    warp_backward,
    warp_backward_tensor,
    warp_confidence,
)

# ------------------------------------------------------------------- edge-aware flow

# "edge" (round 10; not the filter's default, docs/research/2026-12-02-a-better-flow.md says
# why): DIS medium, then a
# weighted least-squares smoothing guided by the source frame (the fast global smoother of
# Min et al. 2014, OpenCV contrib's `ximgproc`), which spreads the flow across even
# intensity and stops at edges, where round 8's Gaussian and guided smoothings blurred the
# motion of objects moving on their own into the wall behind them. The smoother pulls
# towards a constant, so alone it flattened a zoom's ramp: on the clean 192 px zoom of
# samples/photos/fruits.jpg in tests/test_flow.py, 0.079 px (plain DIS) -> 0.180. It
# therefore smooths only what an affine fit of the flow leaves (`affine_fit`) and adds the
# fit back: a camera's pan, zoom or roll passes through, the noise around it is smoothed
# (0.057 px on that zoom). Endpoint error against the true flow: docs/temporal.md,
# "Edge-aware flow" (`python -m benchmarks.flow --truth CORPUS --pairs 2 --candidates
# round10`); lambda and sigma were chosen in that run.
EDGE_LAMBDA = 8000.0
EDGE_SIGMA = 1.5
# Pixel stride of the samples the affine fit uses: 1/64 of the pixels fit the six numbers
# to well under DIS's own error in 1 ms at 1280x720 (the field it gives: 4 ms).
AFFINE_STRIDE = 8


# The smoothing is a prior for where the frames leave the motion open (flat or noisy areas);
# where they decide it, DIS's own flow is kept: wherever it warps the target onto the
# source clearly better than the smoothed flow (pooled squared grey error above
# FUSE_MARGIN times DIS's plus FUSE_FLOOR). Without this the smoothing spread the walkers'
# motion in the static-camera vtest over the floor around them: the flow filter left 0.090
# flicker on its still background (`benchmarks.warping_truth`, scream, 12 frames) against
# plain DIS's 0.055; with it 0.058, while the synthetic zoom kept its gain along the true
# motion (0.87 -> 0.36 without, 0.34 with). Round 10's throwaway variant script; the
# committed sweep's figures are in docs/temporal.md, "Edge-aware flow".
FUSE_MARGIN = 1.2
FUSE_FLOOR = 4.0  # grey levels squared: 2 levels of noise decide nothing
FUSE_SIGMA = 2.0  # px: the error is pooled, a single pixel's noise decides nothing


def edge_aware_flow(source: np.ndarray, target: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """DIS's `flow` (grey `source` -> `target`) smoothed edge-aware where the frames
    leave the motion open, kept where they show DIS is right."""
    smooth = edge_aware_smooth(source, flow)
    keep = warp_error(source, target, smooth) > (
        FUSE_MARGIN * warp_error(source, target, flow) + FUSE_FLOOR)
    return np.where(keep[..., None], flow, smooth)


def warp_error(source: np.ndarray, target: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Squared grey error of `target` warped onto `source` along `flow`, pooled locally."""
    error = warp_backward(target, flow).astype(np.float32) - source.astype(np.float32)
    return cv2.GaussianBlur(error * error, (0, 0), FUSE_SIGMA)


def has_edge_aware_smoothing() -> bool:
    """Whether this OpenCV build has the contrib filter the "edge" preset needs. The function
    is looked up, not the module: some builds without contrib carry an empty `cv2.ximgproc`."""
    return hasattr(getattr(cv2, "ximgproc", None), "fastGlobalSmootherFilter")


def has_contrib() -> bool:
    """Whether this OpenCV build has every contrib module the lab uses (the "lab" extra):
    `ximgproc` (edge-aware smoothing) and `optflow` (sparse-to-dense flow)."""
    return (has_edge_aware_smoothing()
            and hasattr(getattr(cv2, "optflow", None), "calcOpticalFlowSparseToDense"))


def edge_aware_smooth(guide: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`flow` smoothed over even areas of `guide` (grey uint8) and kept at its edges; its
    affine part (the camera's) is kept exactly."""
    base = affine_field(affine_fit(flow), flow.shape[:2])
    # Both components in one call: the same result as one call each (to the bit), and the
    # guide's weights are built once (56 -> 51 ms at 1280x720, one thread).
    residual = cv2.ximgproc.fastGlobalSmootherFilter(guide, flow - base, EDGE_LAMBDA, EDGE_SIGMA)
    return base + residual


def affine_fit(flow: np.ndarray, stride: int = AFFINE_STRIDE) -> np.ndarray:
    """Least-squares affine motion of a flow field: the 3x2 matrix M with
    flow(x, y) ~ [1, x, y] @ M."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h:stride, 0:w:stride].astype(np.float32)
    design = np.stack([np.ones_like(xs), xs, ys], axis=-1).reshape(-1, 3)
    samples = flow[::stride, ::stride].reshape(-1, 2)
    matrix, *_ = np.linalg.lstsq(design, samples, rcond=None)
    return matrix.astype(np.float32)


def affine_field(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The flow field (``H x W x 2``) of the affine motion `matrix` (`affine_fit`)."""
    xs = np.arange(shape[1], dtype=np.float32)[None, :]
    ys = np.arange(shape[0], dtype=np.float32)[:, None]
    field = np.empty((*shape, 2), np.float32)
    # One component at a time: broadcasting over a trailing axis of 2 took 17 ms at
    # 1280x720, this 4 ms.
    for i in range(2):
        field[..., i] = (matrix[0, i] + matrix[1, i] * xs) + matrix[2, i] * ys
    return field



class EdgeAwareFlow(FlowEstimator):
    """The "edge" preset: DIS medium, smoothed edge-aware where the frames leave the motion
    open (`edge_aware_flow`). Without OpenCV's contrib modules it warns once and gives plain
    DIS medium."""

    def __init__(self) -> None:
        super().__init__("dis", "medium")
        self.edge_aware = has_edge_aware_smoothing()
        if not self.edge_aware:
            warnings.warn("OpenCV without the contrib modules (cv2.ximgproc): the flicker "
                          "filter follows unsmoothed DIS flow; install "
                          "opencv-contrib-python-headless (pip install -e \".[lab]\") for "
                          "the edge-aware flow", RuntimeWarning, stacklevel=2)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        flow = super().__call__(source, target)
        if not self.edge_aware:
            return flow
        return edge_aware_flow(to_gray(source), to_gray(target), flow)


LAB_PRESETS = ("edge",)


def flow_estimator(method: str = "dis", preset: str = FLOW_PRESET) -> FlowEstimator:
    """vidstyle's `FlowEstimator`, or the lab's "edge" preset."""
    return EdgeAwareFlow() if preset == "edge" else FlowEstimator(method, preset)


# ------------------------------------------------------------------- global motion

# Where the picture is flat (sky, walls, a dark room), any flow explains the frames, and
# DIS fills such regions with patch noise and codec drift: on the corpus's synthetic camera
# moves, whose true flow is known, its mean endpoint error was 0.74 px (zoom), 0.54 (sky)
# and 1.98 (lowlight) for motions of 1.3-1.7 px a frame, against 0.09 and 0.32 for one
# homography fitted to tracked corners (`python -m benchmarks.flow --truth CORPUS`). A
# textured stylized frame carried along such a flow swims. So the dense flow gives way to
# the frame's global motion wherever that explains the frames about as well.
GLOBAL_CORNERS = 1000
GLOBAL_MIN_INLIERS = 32
GLOBAL_RANSAC_PX = 1.0
# Photometric errors are compared averaged over this neighbourhood (sigma, px), so that
# the choice follows regions, not single noisy pixels.
GLOBAL_EVIDENCE_SIGMA = 4.0


def global_motion(current: np.ndarray, previous: np.ndarray) -> np.ndarray | None:
    """The homography current -> previous that most tracked corners follow, or None when
    too few do (a cut, a blank frame, motion no single plane explains)."""
    a, b = to_gray(current), to_gray(previous)
    corners = cv2.goodFeaturesToTrack(a, GLOBAL_CORNERS, 0.01, 8, blockSize=7)
    if corners is None or len(corners) < GLOBAL_MIN_INLIERS:
        return None
    tracked, status, _ = cv2.calcOpticalFlowPyrLK(a, b, corners, None, winSize=(21, 21),
                                                  maxLevel=3)
    found = status[:, 0] == 1
    if found.sum() < GLOBAL_MIN_INLIERS:
        return None
    homography, inliers = cv2.findHomography(corners[found], tracked[found], cv2.RANSAC,
                                             GLOBAL_RANSAC_PX)
    if homography is None or int(inliers.sum()) < GLOBAL_MIN_INLIERS:
        return None
    return homography


def homography_flow(homography: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The flow field (``H x W x 2``) of a homography mapping current pixels to previous."""
    h = homography.astype(np.float32)
    xs = np.arange(shape[1], dtype=np.float32)[None, :]
    ys = np.arange(shape[0], dtype=np.float32)[:, None]
    # Rows and columns broadcast: a third of the work of full coordinate grids (60 -> 6 ms
    # at 1280x720).
    depth = h[2, 0] * xs + (h[2, 1] * ys + h[2, 2])
    flow = np.empty((*shape, 2), np.float32)
    flow[..., 0] = (h[0, 0] * xs + (h[0, 1] * ys + h[0, 2])) / depth - xs
    flow[..., 1] = (h[1, 0] * xs + (h[1, 1] * ys + h[1, 2])) / depth - ys
    return flow


def with_global_motion(
    flow_back: np.ndarray,
    current: np.ndarray,
    previous: np.ndarray,
    margin: float,
    snap_px: float = math.inf,
    valid_ratio: float = math.inf,
) -> np.ndarray:
    """`flow_back` where it explains the frames clearly better than the global motion,
    the global motion elsewhere: it wins where its local photometric error is at most
    (1 + margin) times the dense flow's (plus a floor for noise-free flat regions). With a
    finite `snap_px` it wins only where the dense flow is already near it, weighted by
    exp(-d^2 / 2 snap_px^2) for a distance d in pixels: a region that moves on its own by
    more than that keeps the dense flow even where it is flat. With a finite `valid_ratio`
    the global motion is used at all only if, over the textured pixels (weighted by the
    squared image gradient), its photometric error is at most that many times the dense
    flow's: a scene one homography does not describe (parallax, people) is left alone."""
    homography = global_motion(current, previous)
    if homography is None:
        return flow_back
    flat = homography_flow(homography, current.shape[:2])
    now, before = smooth_unit(current), smooth_unit(previous)
    dense_squared = squared_error(now, warp_backward(before, flow_back))
    global_squared = squared_error(now, warp_backward(before, flat))
    if math.isfinite(valid_ratio):
        texture = gradient_energy(now)
        explained = (texture * global_squared).sum() / max((texture * dense_squared).sum(), 1e-12)
        if explained > valid_ratio:
            return flow_back
    dense_error = cv2.GaussianBlur(dense_squared, (0, 0), GLOBAL_EVIDENCE_SIGMA)
    global_error = cv2.GaussianBlur(global_squared, (0, 0), GLOBAL_EVIDENCE_SIGMA)
    prefer_global = (global_error <= (1 + margin) * dense_error + 1e-4).astype(np.float32)
    if math.isfinite(snap_px):
        distance = ((flow_back - flat) ** 2).sum(axis=-1)
        prefer_global *= np.exp(-0.5 * distance / snap_px**2).astype(np.float32)
    take = cv2.GaussianBlur(prefer_global, (0, 0), 2.0)[..., None]
    return (take * flat + (1 - take) * flow_back).astype(np.float32)


def gradient_energy(image: np.ndarray) -> np.ndarray:
    """Squared Sobel gradient of the image's mean channel, zero in a 16-px border (where
    the warps sample outside the frame)."""
    grey = image.mean(axis=-1) if image.ndim == 3 else image
    grey = np.ascontiguousarray(grey, dtype=np.float32)
    energy = cv2.Sobel(grey, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(grey, cv2.CV_32F, 0, 1) ** 2
    energy[:16], energy[-16:], energy[:, :16], energy[:, -16:] = 0, 0, 0, 0
    return energy


# ------------------------------------------------------------- confidence variants

# The scene-cut threshold of the one-way confidence with the motion-boundary test
# (`round_trip=False`, a finite `boundary_absolute`), which has no round-trip term and so
# stays higher across a cut than `CUT_COVERAGE`'s: megamind.mp4's three cuts score
# 0.42-0.51, and the lowest other pair of any tuning clip (vtest, megamind, bigbuckbunny,
# cup, carphone, zoom, lowlight, sky) 0.646 (lowlight.mp4; cup.mp4 0.651). Midway.
ONE_WAY_CUT_COVERAGE = 0.58


def cut_coverage_for(round_trip: bool, boundary_absolute: float) -> float:
    """The scene-cut threshold that belongs to a confidence of these settings."""
    if round_trip:
        return CUT_COVERAGE
    return PHOTOMETRIC_CUT_COVERAGE if math.isinf(boundary_absolute) else ONE_WAY_CUT_COVERAGE


def spread_photometric_weight(content: np.ndarray, previous_content: np.ndarray,
                              flow_back: np.ndarray, alpha: float, spread: int) -> np.ndarray:
    """The photometric weight with each pixel taking the worst error within `spread` pixels:
    a style network paints a pixel from its neighbourhood, so a wall pixel next to an object
    that moved is painted anew even though the wall itself did not change."""
    error = photometric_error(content, previous_content, flow_back)
    side = 2 * spread + 1
    error = cv2.dilate(error, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
    return np.exp(-alpha * error).astype(np.float32)


def blurred(flow: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(flow, (0, 0), sigma) if sigma > 0 else flow


def lab_flow_with_confidence(
    previous: np.ndarray,
    current: np.ndarray,
    estimator: FlowEstimator,
    *,
    max_size: int | None = None,
    alpha: float = PHOTOMETRIC_ALPHA,
    smooth: float = 0.0,
    round_trip: bool = True,
    boundary_absolute: float = MOTION_BOUNDARY_ABSOLUTE,
    global_prior: float | None = None,
    global_snap: float = math.inf,
    global_valid: float = math.inf,
    photometric_spread: int = 0,
) -> FlowConfidence:
    """vidstyle's `flow_with_confidence` with the knobs that lost: with `max_size` the flow
    is computed with the long side at most that many pixels and scaled up to the frames'
    size; `smooth` > 0 blurs both flow fields (Gaussian sigma in pixels); with
    `global_prior` (a margin, see `with_global_motion`) the backward flow follows the
    frame's global motion wherever that explains the frames as well as the dense flow;
    `photometric_spread` pools the photometric error (`spread_photometric_weight`)."""
    height, width = current.shape[:2]
    small = fit_long_side(height, width, max_size)
    current_s, previous_s = resize_image(current, small), resize_image(previous, small)
    flow_back = blurred(estimator(current_s, previous_s), smooth)
    if global_prior is not None:
        flow_back = with_global_motion(flow_back, current_s, previous_s, global_prior,
                                       global_snap, global_valid)
    flow_forward = blurred(estimator(previous_s, current_s), smooth) if round_trip else None
    spread = photometric_spread > 0 and alpha > 0 and current.ndim == 3
    estimate = warp_confidence(previous_s, current_s, flow_back, flow_forward,
                               alpha=0.0 if spread else alpha,
                               boundary_absolute=boundary_absolute)
    if spread:
        estimate.confidence *= spread_photometric_weight(current_s, previous_s, flow_back,
                                                         alpha, photometric_spread)
    if small != (height, width):
        estimate = FlowConfidence(
            flow=upscale_flow(estimate.flow, (height, width)),
            confidence=cv2.resize(estimate.confidence, (width, height),
                                  interpolation=cv2.INTER_LINEAR),
            reliable=cv2.resize(estimate.reliable, (width, height),
                                interpolation=cv2.INTER_NEAREST))
    return estimate


# ------------------------------------------------------------------------ filters

# The global-motion prior (`with_global_motion`) is off by default. Along the
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


class LabFlowFilter(FlowFilter):
    """vidstyle's `FlowFilter` with every knob the sweeps turned (`benchmarks.temporal`'s
    configuration keys); at the defaults, exactly the product's filter."""

    def __init__(
        self,
        strength: float,
        *,
        alpha: float = PHOTOMETRIC_ALPHA,
        flow_max_size: int | None = None,
        flow_method: str = "dis",
        flow_preset: str = FLOW_PRESET,
        cut_coverage: float | None = None,
        flow_smoothing: float = 0.0,
        flow_round_trip: bool = False,
        boundary_absolute: float = math.inf,
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
        super().__init__(strength, structure_alpha=structure_alpha)
        self.warp_mode = warp_mode
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

    def reset(self) -> None:
        super().reset()
        self.previous_styled = None
        self.uncovered = None

    def new_estimator(self) -> FlowEstimator:
        return flow_estimator(self.flow_method, self.flow_preset)

    def estimate(self, previous_content: np.ndarray, content: np.ndarray) -> FlowConfidence:
        return lab_flow_with_confidence(
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
        styled = super().__call__(content, styled, estimate)
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
            weight = weight * relative_structure_weight(
                current, warped, self.structure_alpha, self.structure_scale, warped_network)
        return (current + self.correction(weight * (warped - current))).to(styled.dtype)

class LongTermFilter(LabFlowFilter):
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


class GradientFilter(LabFlowFilter):
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


def relative_structure_weight(current: torch.Tensor, warped: torch.Tensor, alpha: float,
                              scale: int,
                              warped_network: torch.Tensor | None = None) -> torch.Tensor:
    """vidstyle's `structure_weight`; with `warped_network` (the network's own previous
    frame, warped the same way) only the gap beyond the network's own coarse change counts:
    a network whose colour patches change from frame to frame (udnie, preset 7) differs
    coarsely from any past, and that difference is the flicker to remove, not a drifted
    past (docs/research/2026-12-04-coarse-picture-test.md)."""
    if warped_network is None:
        return structure_weight(current, warped, alpha, scale)
    coarse = F.avg_pool2d(torch.stack((current, warped, warped_network)), scale,
                          ceil_mode=True)
    gap = ((coarse[0] - coarse[1]) ** 2).sum(0, keepdim=True)
    own = ((coarse[0] - coarse[2]) ** 2).sum(0, keepdim=True)
    return gap_weight((gap - own).clamp(min=0.0), alpha, current.shape[-2:])


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
