"""Which optical flow: DIS or Farneback? Speed and accuracy on real frames.

    python -m benchmarks.flow [--clip samples/cup.mp4] [--sizes 320,640] [--pairs 30]
    python -m benchmarks.flow --truth CORPUS [--pairs 6] [--candidates {round8,round10}]
    python -m benchmarks.flow --tiny [--pairs 30]

Both methods from OpenCV, as `vidstyle.temporal.flow.FlowEstimator` runs them. For each
working size (long side): milliseconds per flow field, and two accuracy measures:

* **photometric error**: the clip's frame t-1 warped to frame t along the estimated flow
  (t -> t-1), mean absolute difference to frame t (RGB, 0-255). Lower means the flow
  explains more of the motion; it is what the temporal filter and warm start rely on.
* **endpoint error** on a known motion: a real frame shifted by a sub-pixel translation
  (3.5, -2.25) px with `cv2.warpAffine`; the mean distance between estimated and true flow
  away from the 8-px border.

`--truth CORPUS` scores the flows against the exact motion of the corpus's synthetic clips
(`tools/build_corpus.py` keeps each camera path): mean endpoint error over the pixels that
stay in view, for each DIS preset, Farneback as the independent check runs it, and DIS
medium with the global-motion prior (`with_global_motion`), on the encoded clips (codec
artefacts and all), with CPU milliseconds per flow. `--candidates round8` scores round 8's
candidates instead: DIS medium with other settings, and two smoothings after it
(`filled_where_flat`, `guided_where_flat`); `--candidates round10` scores OpenCV contrib's
edge-aware ones: DIS medium smoothed by the fast global smoother at several strengths, with
and without the affine fit (the "edge" preset is one of them), and the sparse-to-dense
flow (PyrLK matches interpolated edge-aware). docs/temporal.md has both tables.

`--tiny` scores the ways to get a flow for frames too small for DIS's pyramid (1x1 to
1920x2, issue 40): no motion (zero flow), DIS on the frames padded with copies of their
border, and DIS on the frames stretched (what `FlowEstimator` does, `dis_on_enlarged`):
mean endpoint error against random sub-pixel shifts (up to 2 px each way) of a photo.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.temporal_lab import (
    LAB_PRESETS,
    EdgeAwareFlow,
    LabFlowFilter,
    affine_field,
    affine_fit,
    flow_estimator,
    has_contrib,
    with_global_motion,
)
from vidstyle.evaluate import read_frames
from vidstyle.temporal.flow import (
    DIS_PRESETS,
    FLOW_METHODS,
    FlowEstimator,
    to_gray,
    warp_backward,
)

ROOT = Path(__file__).resolve().parent.parent
SHIFT = (3.5, -2.25)
BORDER = 8


def resized(frame: np.ndarray, long_side: int) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = long_side / max(h, w)
    return cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def translation_epe(estimate: FlowEstimator, frame: np.ndarray) -> float:
    h, w = frame.shape[:2]
    # Content moves by SHIFT from `frame` to `moved`; flow moved -> frame is then -SHIFT.
    matrix = np.float32([[1, 0, SHIFT[0]], [0, 1, SHIFT[1]]])
    moved = cv2.warpAffine(frame, matrix, (w, h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
    flow = estimate(moved, frame)[BORDER:-BORDER, BORDER:-BORDER]
    error = np.hypot(flow[..., 0] + SHIFT[0], flow[..., 1] + SHIFT[1])
    return float(error.mean())


def throughput(clip: Path, pairs: int) -> None:
    """Frames per second of the temporal filter's whole flow step (`FlowFilter.estimate`
    with the shipped settings: the backward flow and its confidence) at 720p and 1080p,
    on one core, beside three cheaper variants that lost on flicker (docs/temporal.md)."""
    from vidstyle.temporal.blend import FLOW_PRESET

    frames = list(read_frames(clip, pairs + 1))
    print(f"FlowFilter.estimate on {clip.name} scaled up, {pairs} pairs, one OpenCV thread")
    # CPU time of this (single) thread, not wall time: on a shared machine the wall clock
    # also counts the other tenants' turns; CPU seconds are what one core must supply.
    print("| frame | flow long side | DIS preset | CPU ms per frame | frames/s per core "
          "| wall ms |")
    print("|---|---|---|---:|---:|---:|")
    for width, height in ((1280, 720), (1920, 1080)):
        big = [cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in frames]
        for max_size, preset in ((None, "edge"), (None, "medium"), (None, "fast"),
                                 (640, "medium")):
            step = LabFlowFilter(0.95, flow_max_size=max_size, flow_preset=preset).estimate
            step(big[0], big[1])  # warm-up
            started, cpu_started = time.perf_counter(), time.thread_time()
            for previous, current in zip(big, big[1:], strict=False):
                step(previous, current)
            cpu_ms = (time.thread_time() - cpu_started) * 1000 / pairs
            wall_ms = (time.perf_counter() - started) * 1000 / pairs
            label = "full (default)" if max_size is None and preset == FLOW_PRESET else (
                max_size or "full")
            print(f"| {width}x{height} | {label} | {preset} | {cpu_ms:.0f} | "
                  f"{1000 / cpu_ms:.1f} | {wall_ms:.0f} |", flush=True)
    print(f"command: python -m benchmarks.flow --throughput --clip {clip} --pairs {pairs}")


# ------------------------------------------------- round 8: closer to the truth than DIS?


def texture_weight(gray: np.ndarray) -> np.ndarray:
    """How well the flow is determined at each pixel: the smaller eigenvalue of the 7-px
    structure tensor (small on flat surfaces and along straight edges, the aperture
    problem)."""
    return cv2.cornerMinEigenVal(gray, 7, 3).astype(np.float32)


def trust_texture(weight: np.ndarray) -> np.ndarray:
    """(H, W, 1) in [0, 1): 1/2 at the frame's median texture, near 1 on strong texture."""
    return (weight / (weight + float(np.median(weight)) + 1e-12))[..., None]


def filled_where_flat(gray: np.ndarray, flow: np.ndarray, sigma: float = 32.0) -> np.ndarray:
    """`flow` with weakly textured pixels pulled to a texture-weighted Gaussian average of
    the flow around them (normalized convolution)."""
    weight = texture_weight(gray)
    total = cv2.GaussianBlur(weight, (0, 0), sigma) + 1e-12
    average = np.dstack([cv2.GaussianBlur(weight * flow[..., i], (0, 0), sigma) / total
                         for i in range(2)])
    trust = trust_texture(weight)
    return trust * flow + (1 - trust) * average


def guided_where_flat(gray: np.ndarray, flow: np.ndarray, radius: int = 32,
                      eps: float = 1e-4) -> np.ndarray:
    """As `filled_where_flat`, the average a texture-weighted guided filter (He et al.
    2010) with the grey frame as guide, so that it stops at intensity edges."""
    weight = texture_weight(gray)
    guide = gray.astype(np.float32) / 255.0
    size = (2 * radius + 1, 2 * radius + 1)

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size)

    total = mean(weight) + 1e-12
    guide_mean = mean(weight * guide) / total
    guide_var = mean(weight * guide * guide) / total - guide_mean**2
    average = np.empty_like(flow)
    for i in range(2):
        flow_mean = mean(weight * flow[..., i]) / total
        slope = (mean(weight * guide * flow[..., i]) / total - guide_mean * flow_mean) / (
            guide_var + eps)
        average[..., i] = mean(slope) * guide + mean(flow_mean - slope * guide_mean)
    trust = trust_texture(weight)
    return trust * flow + (1 - trust) * average


def dis_with(**settings) -> cv2.DISOpticalFlow:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    for name, value in settings.items():
        getattr(dis, f"set{name}")(value)
    return dis


def upscaled_dis(factor: int = 2):
    dis = dis_with()

    def estimate(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
        h, w = current.shape[:2]
        a, b = (cv2.resize(to_gray(x), (w * factor, h * factor), interpolation=cv2.INTER_CUBIC)
                for x in (current, previous))
        return cv2.resize(dis.calc(a, b, None), (w, h), interpolation=cv2.INTER_AREA) / factor
    return estimate


def round8_candidates() -> dict:
    """Flows of (current, previous) to score against the truth (docs/temporal.md)."""
    def plain(**settings):
        dis = dis_with(**settings)
        return lambda current, previous: dis.calc(to_gray(current), to_gray(previous), None)

    medium, robust = plain(), FlowEstimator("dis", "robust")
    return {
        "dis medium (the filter)": medium,
        "FinestScale 0": plain(FinestScale=0),
        "10 refinement iterations": plain(VariationalRefinementIterations=10),
        "PatchStride 2": plain(PatchStride=2),
        "input 2x upscaled": upscaled_dis(2),
        "mean of medium and robust": lambda c, p: (medium(c, p) + robust(c, p)) / 2,
        "fill, Gaussian 32 px": lambda c, p: filled_where_flat(to_gray(c), medium(c, p)),
        "guided filter r 32": lambda c, p: guided_where_flat(to_gray(c), medium(c, p)),
    }


def round10_candidates() -> dict:
    """OpenCV contrib's edge-aware flows of (current, previous) (docs/temporal.md)."""
    if not has_contrib():
        raise ImportError("round 10 needs OpenCV's contrib modules: pip install -e '.[lab]'")

    medium = FlowEstimator("dis", "medium")

    def smoothed(strength: float, sigma: float, affine: bool = True):
        """The "edge" preset's smoothing at another strength, or without the affine fit."""
        def estimate(c, p):
            flow = medium(c, p)
            base = affine_field(affine_fit(flow), flow.shape[:2]) if affine else 0 * flow
            return base + cv2.ximgproc.fastGlobalSmootherFilter(
                to_gray(c), flow - base, strength, sigma)
        return estimate

    def sparse_to_dense(grid: int):
        return lambda c, p: cv2.optflow.calcOpticalFlowSparseToDense(
            to_gray(c), to_gray(p), grid_step=grid)

    return {
        "dis medium": medium,
        "dis edge (the preset)": EdgeAwareFlow(),
        "no affine fit": smoothed(8000, 1.5, affine=False),
        "smoother 500, 1.5": smoothed(500, 1.5),
        "smoother 2000, 1.5": smoothed(2000, 1.5),
        "smoother 30000, 1.5": smoothed(30000, 1.5),
        "smoother 8000, 0.8": smoothed(8000, 0.8),
        "smoother 8000, 4": smoothed(8000, 4.0),
        "sparse-to-dense grid 16": sparse_to_dense(16),
        "sparse-to-dense grid 8": sparse_to_dense(8),
    }


CANDIDATES = {"round8": round8_candidates, "round10": round10_candidates}


def truth_endpoint_errors(corpus: Path, pairs: int, candidates: str | None = None) -> None:
    """Endpoint error of each flow against the synthetic clips' true camera flow."""
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from build_corpus import load_camera, load_corpus, true_flow_back, true_motion_back

    from benchmarks.warping_check import farneback
    from benchmarks.warping_truth import inside

    medium = FlowEstimator("dis", "medium")
    flows = {f"dis {preset}": flow_estimator("dis", preset)
             for preset in (*DIS_PRESETS, *LAB_PRESETS)}
    flows["farneback (the independent check)"] = farneback
    flows["dis medium + global motion"] = (
        lambda current, previous: with_global_motion(medium(current, previous), current,
                                                     previous, margin=0.2))
    if candidates:
        flows = CANDIDATES[candidates]()
    print(f"endpoint error (px) against the true flow, first {pairs} pairs, one OpenCV thread")
    print("| clip | mean motion | " + " | ".join(flows) + " |")
    print("|---|---:|" + "---:|" * len(flows))
    for clip in load_corpus(corpus):
        camera = load_camera(corpus / clip.file)
        if camera is None:
            continue
        frames = list(read_frames(corpus / clip.file, pairs + 1))
        errors = {name: [] for name in flows}
        cpu = {name: 0.0 for name in flows}
        # A clip with moving objects also gets a row for them alone: where the true motion
        # is not the camera's, which is where one smooth or global flow goes wrong.
        objects = {name: [] for name in flows} if isinstance(camera, dict) else None
        motion = []
        for t in range(1, len(frames)):
            truth, valid = true_motion_back(camera, t, frames[t].shape[:2])
            seen = inside(truth) * valid > 0
            own = seen & (np.abs(truth - true_flow_back(camera["camera"], t, truth.shape[:2]))
                          .max(-1) > 0.5) if objects is not None else None
            motion.append(float(np.linalg.norm(truth, axis=-1)[seen].mean()))
            for name, estimate in flows.items():
                started = time.thread_time()
                flow = estimate(frames[t], frames[t - 1])
                cpu[name] += time.thread_time() - started
                miss = np.linalg.norm(flow - truth, axis=-1)
                errors[name].append(float(miss[seen].mean()))
                if objects is not None:
                    objects[name].append(float(miss[own].mean()))
        cells = " | ".join(f"{np.mean(errors[n]):.2f} ({1000 * cpu[n] / len(motion):.0f} ms)"
                           for n in flows)
        print(f"| {clip.name} ({clip.width}x{clip.height}) | {np.mean(motion):.2f} | {cells} |",
              flush=True)
        if objects is not None:
            cells = " | ".join(f"{np.mean(objects[n]):.2f}" for n in flows)
            print(f"| {clip.name}, the moving objects only | | {cells} |", flush=True)
    extra = f" --candidates {candidates}" if candidates else ""
    print(f"command: python -m benchmarks.flow --truth {corpus} --pairs {pairs}{extra}")


TINY_SIZES = ((2, 2), (3, 5), (7, 7), (11, 11), (30, 20), (1920, 2), (2, 400), (640, 4),
              (100, 8))
TINY_PHOTO = ROOT / "samples" / "photos" / "fruits.jpg"


def shifted_crops(photo: np.ndarray, size: tuple[int, int], rng: np.random.Generator):
    """(current, previous, true flow current -> previous) of a random sub-pixel shift."""
    x, y = rng.uniform(100, photo.shape[1] - size[0] - 100), rng.uniform(
        100, photo.shape[0] - size[1] - 100)
    dx, dy = rng.uniform(-2, 2, size=2)

    def crop(left: float, top: float) -> np.ndarray:
        move = np.float32([[1, 0, -left], [0, 1, -top]])
        return to_gray(cv2.warpAffine(photo, move, size, flags=cv2.INTER_LINEAR))

    return crop(x, y), crop(x + dx, y + dy), (dx, dy)


def padded_dis(dis: cv2.DISOpticalFlow, side: int):
    def estimate(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
        h, w = current.shape
        pad = (0, max(side - h, 0), 0, max(side - w, 0))
        big = [cv2.copyMakeBorder(f, *pad, cv2.BORDER_REPLICATE) for f in (current, previous)]
        return dis.calc(big[0], big[1], None)[:h, :w]
    return estimate


def tiny_endpoint_errors(pairs: int) -> None:
    from vidstyle.temporal.flow import dis_min_side

    photo = cv2.resize(cv2.imread(str(TINY_PHOTO))[..., ::-1], (2400, 1800))
    product = FlowEstimator()
    dis = product._dis
    side = dis_min_side(dis.getPatchSize(), dis.getFinestScale())
    ways = {"zero flow": lambda c, p: np.zeros((*c.shape, 2), np.float32),
            "padded": padded_dis(cv2.DISOpticalFlow_create(DIS_PRESETS["medium"]), side),
            "stretched": product}
    print(f"endpoint error (px) of {pairs} random shifts of {TINY_PHOTO.name}, DIS medium, "
          f"frames brought to {side} px a side")
    print(f"{'size':>9} " + " ".join(f"{name:>10}" for name in ways))
    for size in TINY_SIZES:
        rng = np.random.default_rng(0)
        errors = {name: [] for name in ways}
        for _ in range(pairs):
            current, previous, (dx, dy) = shifted_crops(photo, size, rng)
            for name, estimate in ways.items():
                flow = estimate(current, previous)
                errors[name].append(np.hypot(flow[..., 0] + dx, flow[..., 1] + dy).mean())
        print(f"{size[0]:>4}x{size[1]:<4} " + " ".join(
            f"{np.mean(e):>10.2f}" for e in errors.values()))
    print(f"command: python -m benchmarks.flow --tiny --pairs {pairs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, default=ROOT / "samples" / "cup.mp4")
    parser.add_argument("--sizes", default="320,640")
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--throughput", action="store_true",
                        help="time the whole flow-with-confidence step at 720p and 1080p")
    parser.add_argument("--truth", type=Path, metavar="CORPUS",
                        help="endpoint error against the synthetic clips' true flow")
    parser.add_argument("--candidates", choices=tuple(CANDIDATES),
                        help="with --truth: round 8's DIS settings and smoothings, or "
                             "round 10's edge-aware flows")
    parser.add_argument("--tiny", action="store_true",
                        help="flows for frames too small for DIS (zero, padded, stretched)")
    args = parser.parse_args()
    if args.tiny:
        tiny_endpoint_errors(args.pairs)
        return
    cv2.setNumThreads(1)  # the pipeline runs flow in one helper thread
    if args.truth:
        truth_endpoint_errors(args.truth, args.pairs, args.candidates)
        return
    if args.throughput:
        throughput(args.clip, args.pairs)
        return

    frames = list(read_frames(args.clip, args.pairs + 1))
    print(f"clip {args.clip.name}, {len(frames) - 1} consecutive pairs, one OpenCV thread")
    print("| method | long side | ms per flow | photometric error | endpoint error (px) |")
    print("|---|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        small = [resized(f, size) for f in frames]
        for method in FLOW_METHODS:
            estimate = FlowEstimator(method)
            estimate(small[1], small[0])  # warm-up
            started, errors = time.perf_counter(), []
            pairs = list(zip(small, small[1:], strict=False))
            flows = [estimate(current, previous) for previous, current in pairs]
            elapsed = (time.perf_counter() - started) / len(flows)
            for (previous, current), flow in zip(pairs, flows, strict=True):
                warped = warp_backward(previous, flow).astype(np.float32)
                errors.append(float(np.abs(warped - current.astype(np.float32)).mean()))
            epe = translation_epe(estimate, small[0])
            print(f"| {method} | {size} | {elapsed * 1000:.1f} | {np.mean(errors):.2f} "
                  f"| {epe:.3f} |", flush=True)
    print(f"command: python -m benchmarks.flow --clip {args.clip} --sizes {args.sizes} "
          f"--pairs {args.pairs}")


if __name__ == "__main__":
    main()
