"""Segment-parallel stylization on a local Ray cluster against the single-process pipeline.

For one clip and one style it runs:

* the single-process pipeline (`Stylizer.video`, all cores to one torch);
* the Ray executor by segment, with the temporal warm-up (the default) and without it,
  for each `--segments` count;

and reports wall time, speed-up, and the warping error (Lai et al. 2018, via
`vidstyle.evaluate.warping_errors`) of the frame pairs that straddle a segment join
against the pairs inside segments, next to the single-process output's error on the very
same pairs (so a hard-to-track moment at a join is not mistaken for a seam). Results go
to docs/distributed.md.

    python -m benchmarks.segments --clip samples/cup.mp4 --style scream --segments 2 4

Keep to small settings on a shared machine: `--cpus 2`, `--max-size 256`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402

from vidstyle.api import Stylizer  # noqa: E402
from vidstyle.config import Settings  # noqa: E402
from vidstyle.evaluate import paired_frames, warping_errors  # noqa: E402
from vidstyle.executors import Job  # noqa: E402
from vidstyle.executors.ray import RayExecutor  # noqa: E402
from vidstyle.media.segments import plan_segments, scan_video  # noqa: E402

# Warping error is measured on frames shrunk to this long side (flow on full frames costs
# more than the stylization being measured, and the comparison is relative).
EVAL_SIZE = 320


def join_pairs(src: Path, count: int) -> list[int]:
    """Indices into the per-pair error list of the pairs (last of a segment, first of the
    next): pair i compares frames i and i + 1."""
    index = scan_video(src)
    segments = plan_segments(index, count=count)
    frames = list(index.frame_pts)
    return [frames.index(s.start_pts) - 1 for s in segments[1:]]


def errors_of(src: Path, out: Path) -> list[float]:
    pairs = list(paired_frames(src, out, size=EVAL_SIZE))
    return warping_errors([o for _, o in pairs], [i for i, _ in pairs])


def summarize(errors: list[float], joins: list[int]) -> tuple[float, float]:
    """(mean error of join pairs, mean error of all other pairs), NaN pairs skipped."""
    inside = [e for i, e in enumerate(errors) if i not in joins and np.isfinite(e)]
    at_joins = [errors[i] for i in joins if np.isfinite(errors[i])]
    return (statistics.fmean(at_joins) if at_joins else float("nan"),
            statistics.fmean(inside))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=Path("samples/cup.mp4"))
    parser.add_argument("--style", default="scream")
    parser.add_argument("--segments", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--max-size", type=int, default=256)
    parser.add_argument("--temporal", default="flow")
    parser.add_argument("--duration", type=float, default=None)
    args = parser.parse_args()

    settings = Settings(
        style=args.style, device="cpu", max_size=args.max_size, temporal=args.temporal,
        duration=args.duration,
    ).replace(output={"preset": "veryfast", "overwrite": True})
    work = Path(tempfile.mkdtemp(prefix="vidstyle-bench-"))
    rows = []

    # Torch's default (one thread per core) and one thread: on a shared machine, OpenMP
    # threads that spin-wait for a preempted sibling can cost more than they bring.
    default_threads = torch.get_num_threads()
    single_seconds = None
    for threads in dict.fromkeys((default_threads, 1)):
        torch.set_num_threads(threads)
        started = time.monotonic()
        single = Stylizer(settings).video(args.clip, work / f"single{threads}.mp4")
        seconds = time.monotonic() - started
        single_seconds = seconds if single_seconds is None else single_seconds
        single_errors = errors_of(args.clip, single.dst)
        rows.append((f"single process, {threads} torch thread(s)", seconds,
                     single_seconds / seconds, None, None,
                     statistics.fmean(e for e in single_errors if np.isfinite(e))))
    torch.set_num_threads(default_threads)

    ray.init(address="local", num_cpus=args.cpus, include_dashboard=False,
             log_to_driver=False, logging_level="ERROR")
    # Start the worker processes before timing: a long-running cluster has them warm.
    ray.get([ray.remote(lambda: None).remote() for _ in range(args.cpus)])
    for count in args.segments:
        joins = join_pairs(args.clip, count)
        for warmup in (True, False):
            # None: the default warm-up (vidstyle.media.segments.warmup_frames).
            executor = RayExecutor(warmup_frames=None if warmup else 0, segments=count)
            dst = work / f"seg{count}-{'warm' if warmup else 'cold'}.mp4"
            started = time.monotonic()
            batch = executor.run([Job(args.clip, dst)], settings)
            seconds = time.monotonic() - started
            if batch.failures:
                raise SystemExit(batch.failures[0][1])
            at_joins, inside = summarize(errors_of(args.clip, dst), joins)
            single_at_joins, _ = summarize(single_errors, joins)
            label = f"{len(joins) + 1} segments, warm-up {'default' if warmup else 'none'}"
            rows.append((label, seconds, single_seconds / seconds, at_joins, single_at_joins,
                         inside))
    ray.shutdown()

    print(f"clip {args.clip} ({single.frames} frames), style {args.style}, "
          f"temporal {args.temporal}, max-size {args.max_size}, {args.cpus} CPUs "
          f"(machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    print("speed-up: against the first row; every row includes loading the model (in every "
          "worker for Ray), none includes starting Ray")
    print("| run | wall s | speed-up | warp err at joins | single-process, same pairs "
          "| warp err elsewhere |")
    print("|---|---|---|---|---|---|")
    for label, seconds, speedup, at_joins, single_at_joins, inside in rows:
        joins_text = "" if at_joins is None else f"{at_joins:.4f}"
        single_text = "" if single_at_joins is None else f"{single_at_joins:.4f}"
        print(f"| {label} | {seconds:.1f} | {speedup:.2f}x | {joins_text} | {single_text} "
              f"| {inside:.4f} |")
    print("\ncommand: python -m benchmarks.segments " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
