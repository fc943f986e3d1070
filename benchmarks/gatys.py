"""Gatys engine: what the video warm start buys, and what a frame costs on this machine.

1. Iterations to converge. Frame 1 is optimised cold for `--iterations`; its final loss is
   the bar. Each later frame is then optimised (a) cold, (b) from the previous output
   (`previous`), (c) from the previous output warped along the flow (`flow`, disocclusions
   from the content), all with the same objective (temporal weight 0, so the losses
   compare), counting the iterations until the loss reaches the bar.
2. Temporal stability: the clip stylized with `flow` warm start and `frame_iterations`,
   without and with the temporal loss; warping error (vidstyle.evaluate, flow from the
   original frames) of the outputs, next to the original frames' own.
3. Seconds per frame at 360p: a few iterations timed, extrapolated to the default
   iteration counts (said so in the table).

    python -m benchmarks.gatys --clip samples/bigbuckbunny.mp4 --width 160 --frames 5
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vidstyle.config import GatysSettings  # noqa: E402
from vidstyle.engines.gatys import (  # noqa: E402
    GatysEngine,
    optimize_image,
    warp_previous,
)
from vidstyle.evaluate import mean_error, warping_errors  # noqa: E402
from vidstyle.styles.targets import style_target  # noqa: E402
from vidstyle.styles.weights import load_vgg19  # noqa: E402
from vidstyle.temporal.flow import FlowEstimator  # noqa: E402


def read_clip(path: Path, count: int, width: int, skip: int) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index < skip:
                continue
            image = frame.to_ndarray(format="rgb24")
            height = round(image.shape[0] * width / image.shape[1] / 2) * 2
            frames.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
            if len(frames) == count:
                break
    return frames


def tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255


def first_reaching(losses: list[float], bar: float) -> int | None:
    return next((i + 1 for i, loss in enumerate(losses) if loss <= bar), None)


def iterations_to_converge(frames, target, settings, vgg) -> dict[str, list[int | None]]:
    settings = dataclasses.replace(settings, temporal_weight=0.0, tolerance=0.0)
    budget = settings.iterations
    first = optimize_image(tensor(frames[0]), target, settings, vgg=vgg)
    bar = first.losses[-1]
    print(f"frame 1 cold: {budget} iterations, final loss {bar:.4f}")
    counts: dict[str, list[int | None]] = {"cold": [], "previous": [], "flow": []}
    flow = FlowEstimator()
    previous_output = first.image
    for previous, current in zip(frames, frames[1:], strict=False):
        content = tensor(current)
        warped, mask = warp_previous(flow, previous, current, previous_output)
        starts = {
            "cold": None,
            "previous": previous_output,
            "flow": mask * warped + (1 - mask) * content,
        }
        for name, init in starts.items():
            result = optimize_image(content, target, settings, vgg=vgg, init=init)
            counts[name].append(first_reaching(result.losses, bar))
            print(f"  {name:8s} reached the bar after {counts[name][-1]} iterations")
            if name == "cold":
                previous_output = result.image  # each pair starts from a converged frame
    return counts


def stylize_clip(frames, target, settings) -> tuple[list[np.ndarray], float]:
    engine = GatysEngine(settings, target, torch.device("cpu"))
    start = time.perf_counter()
    outputs = [engine.stylize(torch.from_numpy(f)[None])[0].numpy() for f in frames]
    return outputs, (time.perf_counter() - start) / len(frames)


def seconds_per_iteration(target, settings, vgg, size=(360, 640), iterations=3) -> float:
    content = torch.rand(1, 3, *size)
    optimize_image(content, target, settings, vgg=vgg, iterations=1)  # warm-up
    start = time.perf_counter()
    optimize_image(content, target, settings, vgg=vgg, iterations=iterations)
    return (time.perf_counter() - start) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=Path("samples/bigbuckbunny.mp4"))
    parser.add_argument("--style", default="scream")
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--skip", type=int, default=0, help="frames to skip at the start")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--frame-iterations", type=int, default=20)
    # 0.2: the weight proposed for GatysSettings with relative losses (see docs/gatys.md).
    parser.add_argument("--style-weight", type=float, default=0.2)
    parser.add_argument("--temporal-weight", type=float, default=GatysSettings().temporal_weight)
    parser.add_argument("--no-speed", action="store_true", help="skip the 360p timing")
    args = parser.parse_args()

    settings = GatysSettings(
        iterations=args.iterations, frame_iterations=args.frame_iterations,
        style_weight=args.style_weight, temporal_weight=args.temporal_weight, tolerance=0.0,
    )
    vgg = load_vgg19(settings.loss_net)
    target = style_target(args.style, vgg, settings.style_layers)
    frames = read_clip(args.clip, args.frames, args.width, args.skip)
    print(f"{args.clip}: {len(frames)} frames at {frames[0].shape[1]}x{frames[0].shape[0]}, "
          f"style {args.style}, torch threads {torch.get_num_threads()}")

    counts = iterations_to_converge(frames, target, settings, vgg)
    rows = []
    for name, values in counts.items():
        reached = [v for v in values if v is not None]
        mean = f"{np.mean(reached):.1f}" if reached else "-"
        rows.append((name, mean, f"{len(reached)}/{len(values)}"))

    stability = {}
    for label, weight in (("no temporal loss", 0.0), ("temporal loss", args.temporal_weight)):
        knobs = dataclasses.replace(settings, temporal_weight=weight, warm_start="flow")
        outputs, per_frame = stylize_clip(frames, target, knobs)
        stability[label] = (mean_error(warping_errors(outputs, frames)), per_frame)
    stability["original frames"] = (mean_error(warping_errors(frames, frames)), 0.0)

    print("\n| start | iterations to reach frame 1's final loss | pairs that reached it |")
    print("|---|---|---|")
    for name, mean, share in rows:
        print(f"| {name} | {mean} | {share} |")
    print("\n| flow warm start | warping error | s/frame at this size |")
    print("|---|---|---|")
    for label, (error, per_frame) in stability.items():
        print(f"| {label} | {error:.5f} | {per_frame:.1f} |")
    if not args.no_speed:
        seconds = seconds_per_iteration(target, settings, vgg)
        defaults = GatysSettings()
        print("\n| 640x360, CPU | seconds |")
        print("|---|---|")
        print(f"| one L-BFGS iteration (measured, mean of 3) | {seconds:.2f} |")
        print(f"| first frame, {defaults.iterations} iterations (extrapolated) | "
              f"{seconds * defaults.iterations:.0f} |")
        print(f"| later frame, {defaults.frame_iterations} iterations (extrapolated) | "
              f"{seconds * defaults.frame_iterations:.0f} |")
    print("\ncommand: python -m benchmarks.gatys " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
