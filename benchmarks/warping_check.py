"""A second, independent warping-error measure, to check `vidstyle.evaluate` against.

    python -m benchmarks.warping_check ORIGINAL.mp4 STYLIZED.mp4 [--max-frames N]

Same quantity as `vidstyle eval` (Lai et al. 2018, eq. 9: the mean over consecutive pairs
of the squared RGB difference between output frame t and output frame t-1 warped along the
ORIGINAL video's flow, over non-occluded pixels, stylized divided by original), but
computed another way, sharing no code with `vidstyle/temporal` or `vidstyle/evaluate.py`:

* flow: OpenCV's Farneback (Farneback 2003) with its own parameters, on grey frames
  (vidstyle uses DIS, Kroeger et al. 2016);
* occlusion: a pixel counts when the forward-backward round trip returns within
  `ROUND_TRIP_PX` + `ROUND_TRIP_RELATIVE` of the motion (no motion-boundary test);
* warping with `cv2.remap`, bilinear, pixels whose source falls outside the frame dropped;
* a pair with less than `MIN_VISIBLE` of the frame visible is a cut and skipped.

Files are decoded with OpenCV's own reader (not PyAV), both at the original's size.
"""

from __future__ import annotations

import argparse
import math

import cv2
import numpy as np

ROUND_TRIP_PX = 0.75
ROUND_TRIP_RELATIVE = 0.05
# Pairs where less of the frame than this is visible are scene cuts, not motion: skipped.
MIN_VISIBLE = 0.2
FARNEBACK = {"pyr_scale": 0.5, "levels": 4, "winsize": 21, "iterations": 4, "poly_n": 7,
             "poly_sigma": 1.5, "flags": cv2.OPTFLOW_FARNEBACK_GAUSSIAN}


def frames(path: str, size: tuple[int, int] | None, limit: int | None):
    capture = cv2.VideoCapture(path)
    count = 0
    while limit is None or count < limit:
        ok, frame = capture.read()
        if not ok:
            break
        if size is not None and frame.shape[:2] != size:
            frame = cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        count += 1
        yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    capture.release()


def farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    grey_a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    grey_b = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(grey_a, grey_b, None, **FARNEBACK)


def remap(image: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`image` sampled at x + flow(x), and where that sample lies inside the frame."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), inside


def visible(back: np.ndarray, forward: np.ndarray) -> np.ndarray:
    forward_there, inside = remap(forward, back)
    miss = np.linalg.norm(back + forward_there, axis=-1)
    allowed = ROUND_TRIP_PX + ROUND_TRIP_RELATIVE * np.linalg.norm(back, axis=-1)
    return inside & (miss <= allowed)


def pair_error(current: np.ndarray, previous: np.ndarray, back: np.ndarray,
               mask: np.ndarray) -> float:
    warped, _ = remap(previous.astype(np.float32) / 255.0, back)
    squared = ((current.astype(np.float32) / 255.0 - warped) ** 2).sum(-1)
    return float(squared[mask].mean()) if mask.mean() >= MIN_VISIBLE else math.nan


def warping_ratio(original: str, stylized: str, max_frames: int | None = None) -> dict:
    """{'stylized', 'original', 'ratio', 'pairs', 'size'} for the two video files."""
    size = next(frames(original, None, 1)).shape[:2]
    return frames_ratio(frames(original, None, max_frames), frames(stylized, size, max_frames))


def frames_ratio(frames_in, frames_out) -> dict:
    """The same for RGB uint8 frames in memory (outputs already at the originals' size)."""
    errors_out, errors_in = [], []
    previous = None
    size = None
    for frame_in, frame_out in zip(frames_in, frames_out, strict=False):
        size = frame_in.shape[:2]
        if previous is not None:
            previous_in, previous_out = previous
            back = farneback(frame_in, previous_in)
            mask = visible(back, farneback(previous_in, frame_in))
            errors_out.append(pair_error(frame_out, previous_out, back, mask))
            errors_in.append(pair_error(frame_in, previous_in, back, mask))
        previous = (frame_in, frame_out)
    keep = [i for i, e in enumerate(errors_out) if math.isfinite(e)]
    out = float(np.mean([errors_out[i] for i in keep])) if keep else math.nan
    floor = float(np.mean([errors_in[i] for i in keep])) if keep else math.nan
    return {"stylized": out, "original": floor, "ratio": out / floor if floor else math.inf,
            "pairs": len(keep), "size": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("original")
    parser.add_argument("stylized")
    parser.add_argument("--max-frames", type=int)
    args = parser.parse_args()
    result = warping_ratio(args.original, args.stylized, args.max_frames)
    print(f"measured at {result['size'][1]}x{result['size'][0]}, {result['pairs']} pairs: "
          f"warping error {result['stylized']:.5f}, original {result['original']:.5f}, "
          f"ratio {result['ratio']:.2f}")


if __name__ == "__main__":
    main()
