"""Dense optical flow between frames, backward warping, and occlusion masks.

Conventions (as in Ruder et al. 2016): frames are RGB uint8 ``H x W x 3`` numpy arrays;
a flow field is float32 ``H x W x 2`` holding (dx, dy) in pixels. `flow(a, b)` maps each
pixel x of frame `a` to x + flow(x) in frame `b`. To bring the previous output to the
current frame we need the flow *from the current frame to the previous one* and sample the
previous output there: that is backward warping, which leaves no holes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidstyle.images import fit_long_side, resize_image

# Forward-backward consistency thresholds from Sundaram, Brox & Keutzer (2010), the
# occlusion criterion Ruder et al. (2016) use: a pixel is reliable when going forward
# then back returns (nearly) home, and it is not on a motion boundary.
CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5
MOTION_BOUNDARY_RELATIVE = 0.01
MOTION_BOUNDARY_ABSOLUTE = 0.002

FLOW_METHODS = ("dis", "farneback")
# DIS presets by name (Kroeger et al. 2016): ultrafast/fast/medium trade accuracy for speed.
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    "fine": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,  # + the settings in DIS_FINE
    "robust": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,  # + the settings in DIS_ROBUST
    "edge": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,  # + the edge-aware smoothing below
}
# "fine": medium down to the finest pyramid level, denser patches, more variational
# refinement. On samples/cup.mp4 (640x480, 5 pairs) it left a floor of 7.6e-5 against
# 1.15e-4 for medium, i.e. it explains more of the true motion, and its warping ratio of a
# per-frame noise flicker (68.9) is within 11% of the independent Farneback check's (62.0),
# where medium's (44.3) was 29% off; 3.4x medium's time. The measure uses it. Against the
# true flow of the corpus's synthetic camera moves it is the furthest of the DIS presets
# (0.89 / 2.23 / 0.58 px on zoom / lowlight / sky): the lowest floor came from fitting noise
# and codec drift, and on filtered output the measure reads 1.9-7.4x below the truth
# (docs/temporal.md, "Flicker along the true motion").
DIS_FINE = {"FinestScale": 0, "PatchStride": 2, "VariationalRefinementIterations": 10}
# "robust": medium with twice the patch side and four times the smoothness weight of the
# variational refinement, for flat and noisy footage. Endpoint error against the true flow
# of the corpus's synthetic camera moves (`python -m benchmarks.flow --truth CORPUS`):
# zoom 0.74 -> 0.57 px, sky 0.54 -> 0.49, lowlight 1.98 -> 1.44, at 1.3x medium's time.
DIS_ROBUST = {"PatchSize": 16, "PatchStride": 8, "VariationalRefinementAlpha": 80.0}
DIS_SETTINGS = {"fine": DIS_FINE, "robust": DIS_ROBUST}


class FlowEstimator:
    """Dense optical flow with OpenCV.

    DIS (Kroeger et al. 2016) is the default: on real frames it ran twice as fast as
    Farneback with as low a photometric error, and found a known sub-pixel shift ten
    times more accurately (`python -m benchmarks.flow`, docs/benchmarks.md).
    """

    def __init__(self, method: str = "dis", preset: str = "medium") -> None:
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {method!r}: choose one of {FLOW_METHODS}")
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}: choose one of {tuple(DIS_PRESETS)}")
        self.method = method
        self.edge_aware = preset == "edge" and method == "dis"
        if self.edge_aware and not has_edge_aware_smoothing():
            # An environment with plain opencv-python (no contrib modules) beside vidstyle:
            # the filter still works, with the unsmoothed flow, and says so once.
            warnings.warn("OpenCV without the contrib modules (cv2.ximgproc): the flicker "
                          "filter follows unsmoothed DIS flow; install "
                          "opencv-contrib-python-headless for the edge-aware flow",
                          RuntimeWarning, stacklevel=2)
            self.edge_aware = False
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset]) if method == "dis" else None
        if self._dis is not None:
            for name, value in DIS_SETTINGS.get(preset, {}).items():
                getattr(self._dis, f"set{name}")(value)

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from `source` to `target` (both RGB uint8 or grayscale uint8)."""
        a, b = to_gray(source), to_gray(target)
        if self._dis is not None:
            patch, finest = self._dis.getPatchSize(), self._dis.getFinestScale()
            if dis_coarsest_scale(*a.shape, patch) < finest:
                return dis_on_enlarged(self._dis, a, b, dis_min_side(patch, finest))
            flow = self._dis.calc(a, b, None)
            return edge_aware_flow(a, b, flow) if self.edge_aware else flow
        return cv2.calcOpticalFlowFarneback(
            a, b, None, pyr_scale=0.5, levels=5, winsize=15, iterations=3,
            poly_n=5, poly_sigma=1.2, flags=0,
        )


def dis_coarsest_scale(height: int, width: int, patch: int) -> int:
    """The coarsest pyramid level OpenCV's DIS would use for a frame, -1 if it refuses it.

    As dis_flow.cpp computes it: the smaller of int(log2(long / (4 * patch)) + 0.5) and
    int(log2(short // patch)), refused when negative. tests/test_flow.py checks this
    against OpenCV itself."""
    short, long = min(height, width), max(height, width)
    if short // patch == 0:
        return -1
    return min(int(math.log(long / (4.0 * patch)) / math.log(2.0) + 0.5),
               int(math.log(short // patch) / math.log(2.0)))


def dis_min_side(patch: int, finest: int) -> int:
    """The smallest side a square frame needs for DIS's pyramid to reach `finest`."""
    side = patch
    while dis_coarsest_scale(side, side, patch) < finest:
        side += 1
    return side


# A frame whose pyramid does not reach DIS's finest level is not given to DIS as it is:
# below one patch a side (or about 1.4 patches along the long side) OpenCV refuses it
# ("The input image must have either width or height >= 12"), and between that and the
# finest level DIS re-tunes the object for good from the width alone (dis_flow.cpp,
# autoSelectPatchSizeAndScales), after which a 100x8 frame crashed the process and every
# later frame, of any size, got another flow. Such frames (long side under 46 px or short
# side under 16 at the medium preset) are stretched, each side on its own, to
# `dis_min_side`, and the flow is scaled back with its vectors. The alternatives were
# padding them with copies of their border, or assuming no motion (zero flow: blending by
# the photometric weight alone). Mean endpoint error (px) against 30 random sub-pixel
# shifts of a photo (`python -m benchmarks.flow --tiny`), zero / padded / stretched:
# 2x2 1.66 / 1.72 / 1.65, 7x7 1.66 / 3.00 / 1.11, 30x20 1.66 / 0.28 / 0.22, 1920x2
# 1.66 / 25.2 / 1.66, 2x400 1.66 / 16.4 / 0.77, 640x4 1.66 / 8.13 / 0.71. Stretching is
# never worse than no motion and finds what motion there is; padding smears a strip along
# its copied rows.


def dis_on_enlarged(dis: cv2.DISOpticalFlow, source: np.ndarray, target: np.ndarray,
                    side: int) -> np.ndarray:
    """DIS's flow between grey frames too small for it, computed on both stretched to at
    least `side` pixels a side and brought back to their size."""
    height, width = source.shape
    size = (max(width, side), max(height, side))
    big = [cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) for image in (source, target)]
    return upscale_flow(dis.calc(big[0], big[1], None), (height, width))


# "edge" (round 10; not the filter's default, blend.py says why): DIS medium, then a
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
    """Whether this OpenCV build has the contrib module the "edge" preset needs."""
    return hasattr(cv2, "ximgproc")


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


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


def sampling_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling coordinates x + flow(x) as two float32 maps for cv2.remap."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def warp_backward(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample `image` at x + flow(x): with flow current->previous, moves previous to current.

    Bilinear; samples that fall outside the frame take the nearest border pixel.
    """
    map_x, map_y = sampling_grid(flow)
    return cv2.remap(
        image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def warp_backward_tensor(image: torch.Tensor, flow: np.ndarray | torch.Tensor,
                         mode: str = "bilinear") -> torch.Tensor:
    """`warp_backward` for an ``N x C x H x W`` tensor on any device (flow ``H x W x 2``).

    Keeps the data on the GPU when the frames live there; same sampling as the numpy one
    (`mode` "bilinear"), or `grid_sample`'s "bicubic", clamped to the image's own range.
    """
    n, _, h, w = image.shape
    flow_t = torch.as_tensor(flow, device=image.device, dtype=torch.float32)
    ys, xs = torch.meshgrid(
        torch.arange(h, device=image.device, dtype=torch.float32),
        torch.arange(w, device=image.device, dtype=torch.float32),
        indexing="ij",
    )
    # grid_sample wants coordinates normalised to [-1, 1] with align_corners=True.
    gx = (xs + flow_t[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow_t[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1).unsqueeze(0).expand(n, h, w, 2)
    source = image.float()
    warped = F.grid_sample(source, grid, mode=mode, padding_mode="border", align_corners=True)
    if mode == "bicubic":  # its overshoot at edges, fed back frame after frame, would grow
        warped = warped.clamp(float(source.min()), float(source.max()))
    return warped.to(image.dtype)


def consistency_ratios(
    flow_back: np.ndarray,
    flow_forward: np.ndarray,
    boundary_absolute: float = MOTION_BOUNDARY_ABSOLUTE,
) -> tuple[np.ndarray, np.ndarray]:
    """How far each pixel is from failing Sundaram et al.'s two tests (1 = on the threshold).

    Returns (round-trip ratio, motion-boundary ratio), float32 ``H x W``: the squared
    forward-backward round trip over its allowance, and the flow's squared gradient over
    its allowance. A pixel passes both tests when both ratios are at most 1.
    """
    forward_at_target = warp_backward(flow_forward, flow_back)
    round_trip = flow_back + forward_at_target
    lhs = (round_trip**2).sum(-1)
    rhs = CONSISTENCY_RELATIVE * ((flow_back**2).sum(-1) + (forward_at_target**2).sum(-1))
    round_trip_ratio = lhs / (rhs + CONSISTENCY_ABSOLUTE)

    boundary = motion_boundary_ratio(flow_back, boundary_absolute)
    return round_trip_ratio.astype(np.float32), boundary


def motion_boundary_ratio(
    flow_back: np.ndarray, absolute: float = MOTION_BOUNDARY_ABSOLUTE
) -> np.ndarray:
    """The flow's squared gradient over Sundaram et al.'s allowance (1 = on the threshold).

    `absolute` is the allowance's constant part (px^2 per px^2); infinity turns the test off.
    """
    if math.isinf(absolute):
        return np.zeros(flow_back.shape[:2], np.float32)
    du_dy, du_dx = gradient(flow_back[..., 0])
    dv_dy, dv_dx = gradient(flow_back[..., 1])
    gradient_energy = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2
    allowance = MOTION_BOUNDARY_RELATIVE * (flow_back**2).sum(-1) + absolute
    return (gradient_energy / allowance).astype(np.float32)


def gradient(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d/dy, d/dx) of an ``H x W`` field as `np.gradient` gives them; along a side one
    pixel long (a 1920x1 frame), where numpy has no neighbour to differ from, 0."""
    return tuple(np.gradient(field, axis=axis) if field.shape[axis] > 1
                 else np.zeros_like(field) for axis in (0, 1))


def reliability_mask(flow_back: np.ndarray, flow_forward: np.ndarray) -> np.ndarray:
    """Where the warp from the previous frame can be trusted, as float32 ``H x W`` in {0, 1}.

    `flow_back` is current->previous, `flow_forward` previous->current. A pixel is
    unreliable (0) when it was occluded in the previous frame (the round trip does not
    return home) or lies on a motion boundary (the flow changes sharply around it).
    """
    round_trip, boundary = consistency_ratios(flow_back, flow_forward)
    return ((round_trip <= 1.0) & (boundary <= 1.0)).astype(np.float32)


# ------------------------------------------------------------- flow with confidence

# Photometric weight exp(-alpha * ||I_t - warp(I_{t-1})||^2) on RGB in [0, 1] (Lai et al.
# 2018, sec. 3.2, alpha = 50). It is computed on lightly blurred frames so that sensor
# and compression noise (which the flow cannot and need not explain) does not read as
# a failed warp: the weight should fall where the *content* changed.
PHOTOMETRIC_ALPHA = 50.0
PHOTOMETRIC_BLUR_SIGMA = 1.0
# A pair of frames whose mean confidence is below this is a scene cut. Measured with
# `flow_with_confidence` at full size over whole corpus clips: megamind.mp4's three cuts
# score 0.016-0.033, its other 188 pairs 0.80 or more; carphone.mp4 (heavy compression,
# handheld) 0.79 or more (docs/temporal.md).
CUT_COVERAGE = 0.15
# The same for the one-way confidence (`round_trip=False`, the flicker filter's), which
# has no round-trip term and so stays higher across a cut: megamind.mp4's three cuts score
# 0.42-0.51, and the lowest other pair of any tuning clip (vtest, megamind, bigbuckbunny,
# cup, carphone, zoom, lowlight, sky) 0.646 (lowlight.mp4; cup.mp4 0.651). Midway.
ONE_WAY_CUT_COVERAGE = 0.58
# The same for the one-way confidence without the motion-boundary test (the flicker
# filter's default, vidstyle/temporal/blend.py): the photometric weight alone. Over whole
# tuning clips megamind.mp4's three cuts score 0.458, 0.570 and 0.508, every other pair of
# every tuning clip 0.977 or more (cup 0.978, carphone 0.978, bigbuckbunny 0.977); the
# threshold sits midway. Held-out clips not used.
PHOTOMETRIC_CUT_COVERAGE = 0.77


def cut_coverage_for(round_trip: bool, boundary_absolute: float) -> float:
    """The scene-cut threshold that belongs to a confidence of these settings."""
    if round_trip:
        return CUT_COVERAGE
    return PHOTOMETRIC_CUT_COVERAGE if math.isinf(boundary_absolute) else ONE_WAY_CUT_COVERAGE


@dataclass
class FlowConfidence:
    """The flow from the current frame back to the previous one, and how far to trust it.

    `flow` is current -> previous (``H x W x 2`` float32, pixels), so `warp_backward(x,
    flow)` brings anything aligned with the previous frame to the current one.
    `confidence` (``H x W`` float32 in [0, 1]) is a soft weight: 1 where the round trip
    returns home, the flow is smooth and the warped previous frame matches the current
    one; it falls off smoothly (not a cliff) as any of the three gets worse, so noisy
    footage loses some weight instead of flipping pixels in and out. `reliable` (``H x W``
    float32 in {0, 1}) is the hard forward-backward mask of Sundaram et al. (2010) as used
    by the warping-error metric (Lai et al. 2018).
    """

    flow: np.ndarray
    confidence: np.ndarray
    reliable: np.ndarray

    @property
    def coverage(self) -> float:
        """Mean confidence: near 0 when nothing of the previous frame is seen (a cut)."""
        return float(self.confidence.mean())


def flow_with_confidence(
    previous: np.ndarray,
    current: np.ndarray,
    estimator: FlowEstimator | None = None,
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
    """Flow both ways between two RGB uint8 frames, and the confidence in warping along it.

    With `max_size` the flow is computed with the long side at most that many pixels and
    scaled up to the frames' size (cheaper, and smoother on noisy footage). `smooth` > 0
    blurs both flow fields (Gaussian sigma in pixels) before they are used. Without
    `round_trip` only the backward flow is computed (half the cost): occlusions are then
    caught by the photometric term alone, and `reliable` holds the motion-boundary test only.
    With `global_prior` (a margin, see `with_global_motion`) the backward flow follows the
    frame's global motion wherever that explains the frames as well as the dense flow.
    """
    estimator = estimator or FlowEstimator()
    height, width = current.shape[:2]
    small = fit_long_side(height, width, max_size)
    current_s, previous_s = resize_image(current, small), resize_image(previous, small)
    flow_back = estimator(current_s, previous_s)
    if smooth > 0:
        flow_back = cv2.GaussianBlur(flow_back, (0, 0), smooth)
    if global_prior is not None:
        flow_back = with_global_motion(flow_back, current_s, previous_s, global_prior,
                                       global_snap, global_valid)
    if round_trip:
        flow_forward = estimator(previous_s, current_s)
        if smooth > 0:
            flow_forward = cv2.GaussianBlur(flow_forward, (0, 0), smooth)
        round_trip_ratio, boundary = consistency_ratios(
            flow_back, flow_forward, boundary_absolute
        )
    else:
        boundary = motion_boundary_ratio(flow_back, boundary_absolute)
        round_trip_ratio = np.zeros_like(boundary)
    reliable = ((round_trip_ratio <= 1.0) & (boundary <= 1.0)).astype(np.float32)
    if round_trip or not math.isinf(boundary_absolute):
        # exp(-r^2 / 2): 0.88 at half the threshold, 0.61 on it, 0.14 at twice it.
        confidence = np.exp(-0.5 * (round_trip_ratio**2 + boundary**2)).astype(np.float32)
    else:  # neither test (the default filter): exp(0) everywhere, without computing it
        confidence = np.ones(boundary.shape, np.float32)
    if alpha > 0 and current.ndim == 3:
        confidence *= photometric_weight(current_s, previous_s, flow_back, alpha,
                                         photometric_spread)
    if small != (height, width):
        flow_back = upscale_flow(flow_back, (height, width))
        confidence = cv2.resize(confidence, (width, height), interpolation=cv2.INTER_LINEAR)
        reliable = cv2.resize(reliable, (width, height), interpolation=cv2.INTER_NEAREST)
    return FlowConfidence(flow=flow_back, confidence=confidence, reliable=reliable)


def photometric_weight(
    content: np.ndarray, previous_content: np.ndarray, flow_back: np.ndarray, alpha: float,
    spread: int = 0,
) -> np.ndarray:
    """``exp(-alpha * ||I_t - warp(I_{t-1})||^2)`` per pixel, RGB in [0, 1] (Lai et al.),
    on frames blurred by `PHOTOMETRIC_BLUR_SIGMA` so noise does not count as change.

    With `spread` > 0 each pixel takes the worst error within that many pixels: a style
    network paints a pixel from its neighbourhood, so a wall pixel next to an object that
    moved is painted anew even though the wall itself did not change."""
    current = smooth_unit(content)
    warped = warp_backward(smooth_unit(previous_content), flow_back)
    error = squared_error(current, warped)
    if spread > 0:
        side = 2 * spread + 1
        error = cv2.dilate(error, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
    return np.exp(-alpha * error).astype(np.float32)


def smooth_unit(image: np.ndarray) -> np.ndarray:
    unit = image.astype(np.float32) / 255.0
    if PHOTOMETRIC_BLUR_SIGMA <= 0:
        return unit
    return cv2.GaussianBlur(unit, (0, 0), PHOTOMETRIC_BLUR_SIGMA)


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


def squared_error(image: np.ndarray, warped: np.ndarray) -> np.ndarray:
    """Per pixel, the squared difference summed over the channels (float32 ``H x W``).

    OpenCV's per-element kernels and a 1x3 channel sum: 1.6 ms at 1280x720 against 12.3 ms
    for numpy's sum over the (strided) last axis, bit for bit the same (round 6)."""
    difference = cv2.subtract(np.asarray(image, np.float32), np.asarray(warped, np.float32))
    squared = cv2.multiply(difference, difference)
    if squared.ndim == 3:
        squared = cv2.transform(squared, np.ones((1, squared.shape[-1]), np.float32))
    return squared.reshape(image.shape[:2])


def gradient_energy(image: np.ndarray) -> np.ndarray:
    """Squared Sobel gradient of the image's mean channel, zero in a 16-px border (where
    the warps sample outside the frame)."""
    grey = image.mean(axis=-1) if image.ndim == 3 else image
    grey = np.ascontiguousarray(grey, dtype=np.float32)
    energy = cv2.Sobel(grey, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(grey, cv2.CV_32F, 0, 1) ** 2
    energy[:16], energy[-16:], energy[:, :16], energy[:, -16:] = 0, 0, 0, 0
    return energy


# ------------------------------------------------------------------------ resizing


def upscale_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a flow field to (height, width), scaling the vectors with the pixels."""
    height, width = flow.shape[:2]
    big = cv2.resize(flow, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    big[..., 0] *= shape[1] / width
    big[..., 1] *= shape[0] / height
    return big
