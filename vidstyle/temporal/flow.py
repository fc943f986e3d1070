"""Dense optical flow between frames, backward warping, and occlusion masks.

Conventions (as in Ruder et al. 2016): frames are RGB uint8 ``H x W x 3`` numpy arrays;
a flow field is float32 ``H x W x 2`` holding (dx, dy) in pixels. `flow(a, b)` maps each
pixel x of frame `a` to x + flow(x) in frame `b`. To bring the previous output to the
current frame we need the flow *from the current frame to the previous one* and sample the
previous output there: that is backward warping, which leaves no holes.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# Forward-backward consistency thresholds from Sundaram, Brox & Keutzer (2010), the
# occlusion criterion Ruder et al. (2016) use: a pixel is reliable when going forward
# then back returns (nearly) home, and it is not on a motion boundary.
CONSISTENCY_RELATIVE = 0.01
CONSISTENCY_ABSOLUTE = 0.5
MOTION_BOUNDARY_RELATIVE = 0.01
MOTION_BOUNDARY_ABSOLUTE = 0.002

FLOW_METHODS = ("dis", "farneback")


class FlowEstimator:
    """Dense optical flow with OpenCV.

    DIS (Kroeger et al. 2016) is the default: on real frames it ran twice as fast as
    Farneback with as low a photometric error, and found a known sub-pixel shift ten
    times more accurately (`python -m benchmarks.flow`, docs/benchmarks.md).
    """

    def __init__(self, method: str = "dis") -> None:
        if method not in FLOW_METHODS:
            raise ValueError(f"unknown flow method {method!r}: choose one of {FLOW_METHODS}")
        self.method = method
        self._dis = (
            cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            if method == "dis"
            else None
        )

    def __call__(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Flow from `source` to `target` (both RGB uint8 or grayscale uint8)."""
        a, b = to_gray(source), to_gray(target)
        if self._dis is not None:
            return self._dis.calc(a, b, None)
        return cv2.calcOpticalFlowFarneback(
            a, b, None, pyr_scale=0.5, levels=5, winsize=15, iterations=3,
            poly_n=5, poly_sigma=1.2, flags=0,
        )


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


def warp_backward_tensor(image: torch.Tensor, flow: np.ndarray | torch.Tensor) -> torch.Tensor:
    """`warp_backward` for an ``N x C x H x W`` tensor on any device (flow ``H x W x 2``).

    Keeps the data on the GPU when the frames live there; same sampling as the numpy one.
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
    warped = F.grid_sample(
        image.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return warped.to(image.dtype)


def reliability_mask(flow_back: np.ndarray, flow_forward: np.ndarray) -> np.ndarray:
    """Where the warp from the previous frame can be trusted, as float32 ``H x W`` in {0, 1}.

    `flow_back` is current->previous, `flow_forward` previous->current. A pixel is
    unreliable (0) when it was occluded in the previous frame (the round trip does not
    return home) or lies on a motion boundary (the flow changes sharply around it).
    """
    forward_at_target = warp_backward(flow_forward, flow_back)
    round_trip = flow_back + forward_at_target
    lhs = (round_trip**2).sum(-1)
    rhs = CONSISTENCY_RELATIVE * ((flow_back**2).sum(-1) + (forward_at_target**2).sum(-1))
    consistent = lhs <= rhs + CONSISTENCY_ABSOLUTE

    du_dy, du_dx = np.gradient(flow_back[..., 0])
    dv_dy, dv_dx = np.gradient(flow_back[..., 1])
    gradient_energy = du_dx**2 + du_dy**2 + dv_dx**2 + dv_dy**2
    smooth = gradient_energy <= (
        MOTION_BOUNDARY_RELATIVE * (flow_back**2).sum(-1) + MOTION_BOUNDARY_ABSOLUTE
    )
    return (consistent & smooth).astype(np.float32)
