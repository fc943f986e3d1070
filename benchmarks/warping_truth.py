"""Warping error along the true motion, for the corpus's synthetic clips.

    python -m benchmarks.warping_truth CORPUS/zoom.mp4 STYLIZED.mp4 [--max-frames N]

`vidstyle eval` and `benchmarks.warping_check` both warp along an *estimated* flow, and
where the picture is flat (a sky, a wall, a dark room) any flow fits the original, so the
two estimators disagree there by pixels, and a textured stylized frame warped along either
shows an error that is the flow's, not the video's. The synthetic clips of
`tools/build_corpus.py` are a camera moving over a photo, so their flow is known exactly
(`true_flow_back`, from the `NAME.camera.json` the builder writes beside each): this
measure is the same quantity (Lai et al. 2018, eq. 9, stylized / original) with no flow
error at all. Pixels whose source lies outside the previous frame are left out; there are
no occlusions in a camera move over a flat photo. A clip with moving objects (crossing)
leaves out their edges and the background they uncover (`true_motion_back`).

For a real clip from a camera that does not move (`static_camera` in the corpus), the true
flow of its still background is zero: `still_ratio` measures there, with no flow at all
(`--still`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

from build_corpus import load_camera, object_bodies, true_motion_back  # noqa: E402

from vidstyle.evaluate import mean_error, paired_frames  # noqa: E402
from vidstyle.temporal.flow import warp_backward  # noqa: E402


def inside(flow: np.ndarray) -> np.ndarray:
    """Where x + flow(x) lies inside the frame (float32 {0, 1})."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    return ((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).astype(np.float32)


def pair_error(current: np.ndarray, previous: np.ndarray, flow: np.ndarray,
               mask: np.ndarray) -> float:
    warped = warp_backward(previous.astype(np.float32) / 255.0, flow)
    squared = ((current.astype(np.float32) / 255.0 - warped) ** 2).sum(-1)
    return float((squared * mask).sum() / mask.sum())


def truth_ratio(frames_in, frames_out, camera: list | dict, objects_only: bool = False
                ) -> dict:
    """{'stylized', 'original', 'ratio', 'pairs'}: RGB uint8 frames at the same size, the
    first of them frame 0 of the clip whose motion (`load_camera`) is `camera`.
    `objects_only`: over the moving objects alone (a clip with some: `object_bodies`),
    where a flow that follows the camera, or smooths across an edge, leaves trails."""
    errors_out, errors_in = [], []
    previous = None
    for t, (frame_in, frame_out) in enumerate(zip(frames_in, frames_out, strict=False)):
        if previous is not None:
            flow, valid = true_motion_back(camera, t, frame_in.shape[:2])
            mask = inside(flow) * valid
            if objects_only:
                mask = mask * object_bodies(camera, t, frame_in.shape[:2])
            errors_out.append(pair_error(frame_out, previous[1], flow, mask))
            errors_in.append(pair_error(frame_in, previous[0], flow, mask))
        previous = (frame_in, frame_out)
    out, floor = mean_error(errors_out), mean_error(errors_in)
    return {"stylized": out, "original": floor, "ratio": out / floor, "pairs": len(errors_out)}


# Frames back that count as "just left" by a moving object (`wake_ratio`), and pixels
# round the objects left out of the far background it is compared with.
WAKE_FRAMES = 10
WAKE_EDGE_PX = 3
WAKE_FAR_PX = 150


def wake_ratio(frames_out, per_frame, motion: dict) -> float:
    """How far the filtered frames depart from the per-frame network output over the
    background a moving object covered in the last `WAKE_FRAMES` frames, against the
    background far from every object: about 1 with no trail behind the objects, more where
    the filter keeps painting what the object left there (docs/temporal.md, "The trail").
    Uint8 RGB frames; the mean over the frames from `WAKE_FRAMES` on (NaN for fewer, or a
    clip with no moving objects)."""
    if not isinstance(motion, dict) or not motion.get("objects"):
        return float("nan")
    height, width = frames_out[0].shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ratios = []
    for t in range(WAKE_FRAMES, min(len(frames_out), len(per_frame))):
        wake, near = np.zeros((height, width), bool), np.zeros((height, width), bool)
        for item in motion["objects"]:
            (x, y), radius = item["path"][t], item["radius"]
            distance = np.hypot(xs - x, ys - y)
            for k in range(t - WAKE_FRAMES, t):
                px, py = item["path"][k]
                wake |= (np.hypot(xs - px, ys - py) < radius) & (distance > radius + WAKE_EDGE_PX)
            near |= distance < radius + WAKE_FAR_PX
        departure = np.abs(frames_out[t].astype(np.float32) - per_frame[t]).mean(-1)
        ratios.append(float(departure[wake].mean() / max(departure[~near].mean(), 1e-6)))
    return float(np.mean(ratios)) if ratios else float("nan")


# A pixel of a static-camera clip is still background when its blurred grey level moves
# less than this over the frames measured (0-255), and it is not within `STILL_MARGIN_PX`
# of a pixel that does (people's shadows and blur). On vtest's first 12 frames: 89% of the
# frame.
STILL_RANGE = 10
STILL_MARGIN_PX = 7


def still_background(frames_in) -> np.ndarray:
    """Where a static camera's frames do not change (bool ``H x W``): there the true flow is
    zero."""
    grey = np.stack([cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (0, 0), 2.0)
                     .astype(np.float32) for f in frames_in])
    still = (grey.max(axis=0) - grey.min(axis=0)) < STILL_RANGE
    side = 2 * STILL_MARGIN_PX + 1
    return cv2.erode(still.astype(np.uint8), np.ones((side, side), np.uint8)) > 0


def still_ratio(frames_in, frames_out) -> dict:
    """The warping ratio along the true (zero) flow over a static camera's still
    background: Lai et al.'s measure with no flow to estimate, on real footage."""
    frames_in, frames_out = list(frames_in), list(frames_out)
    mask = still_background(frames_in)

    def error(frames, t: int) -> float:
        step = (frames[t].astype(np.float32) - frames[t - 1]) / 255.0
        return float((step**2).sum(-1)[mask].mean())

    pairs = range(1, min(len(frames_in), len(frames_out)))
    out = float(np.mean([error(frames_out, t) for t in pairs]))
    floor = float(np.mean([error(frames_in, t) for t in pairs]))
    return {"stylized": out, "original": floor, "ratio": out / floor, "pairs": len(pairs),
            "still": float(mask.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("original", type=Path, help="a synthetic corpus clip")
    parser.add_argument("stylized", type=Path)
    parser.add_argument("--max-frames", type=int)
    parser.add_argument("--still", action="store_true",
                        help="a static-camera clip: measure over its still background")
    args = parser.parse_args()
    if args.still:
        pairs = list(paired_frames(args.original, args.stylized, args.max_frames))
        result = still_ratio([a for a, _ in pairs], [b for _, b in pairs])
        print(f"{result['pairs']} pairs over the still background ({result['still']:.0%} of "
              f"the frame): warping error {result['stylized']:.5f}, original "
              f"{result['original']:.5f}, ratio {result['ratio']:.2f}")
        return
    camera = load_camera(args.original)
    if camera is None:
        raise SystemExit(f"{args.original}: no camera path beside it (a real clip?)")
    pairs = list(paired_frames(args.original, args.stylized, args.max_frames))
    result = truth_ratio([a for a, _ in pairs], [b for _, b in pairs], camera)
    print(f"{result['pairs']} pairs along the true flow: warping error "
          f"{result['stylized']:.5f}, original {result['original']:.5f}, "
          f"ratio {result['ratio']:.2f}")


if __name__ == "__main__":
    main()
