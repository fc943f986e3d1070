"""Model-only speed of style specs side by side: alternating rounds in one process.

    python -m benchmarks.style_speed SPEC [SPEC ...] [--size 640x480] [--rounds 5]
        [--frames 3] [--precision auto] [--threads N]

Each SPEC is anything ``--style`` takes (a named style, ``preset:N``, a network file). Every
round runs `--frames` frames through each spec's engine in turn (`FastEngine`, as
`vidstyle apply` runs it, without the flicker filter and without compiling), so a busy
neighbour slows all of them alike; the table gives each spec's median fps over the rounds
and its ratio to the first spec's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vidstyle.device import resolve_precision
from vidstyle.engines.fast import FastEngine, network_threads
from vidstyle.styles.resolve import load_style


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or network_threads())
    width, height = (int(v) for v in args.size.split("x"))
    device = torch.device("cpu")
    dtype = resolve_precision(args.precision, device)
    engines = {spec: FastEngine(load_style(spec), device, dtype) for spec in args.specs}
    frames = torch.randint(0, 256, (1, height, width, 3), dtype=torch.uint8)
    with torch.inference_mode():
        for engine in engines.values():  # warm-up: first-call allocations, oneDNN kernels
            engine.stylize(frames)
        seconds: dict[str, list[float]] = {spec: [] for spec in engines}
        for _ in range(args.rounds):
            for spec, engine in engines.items():
                started = time.perf_counter()
                for _ in range(args.frames):
                    engine.stylize(frames)
                seconds[spec].append((time.perf_counter() - started) / args.frames)
    print(f"{width}x{height}, {dtype}, {torch.get_num_threads()} threads, "
          f"{args.rounds} alternating rounds of {args.frames} frames")
    print("| spec | fps (median) | x first |")
    print("|---|---:|---:|")
    first = statistics.median(seconds[args.specs[0]])
    for spec, values in seconds.items():
        median = statistics.median(values)
        print(f"| {spec} | {1 / median:.2f} | {first / median:.2f} |")
    print("command: python -m benchmarks.style_speed " + " ".join(argv or [])
          if argv else "")


if __name__ == "__main__":
    main()
