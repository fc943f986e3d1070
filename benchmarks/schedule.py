"""What a style transition costs: a 2 s window of a clip, one style against a schedule
that changes style at 1 s with a 1 s crossfade (half the window inside it), for a
style-space pair (two presets) and a blended-output pair (two Johnson networks).
Temporal filter off, network at 64 px, one torch thread; two rounds, alternating.
Results: docs/schedule.md.

    python -m benchmarks.schedule --clip samples/cup.mp4
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from vidstyle.api import Stylizer  # noqa: E402
from vidstyle.config import Settings  # noqa: E402

RUNS = ("preset:2", "0:preset:2, 1:preset:7", "scream", "0:scream, 1:wave")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=Path("samples/cup.mp4"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = Settings(device="cpu", max_size=64, temporal="off", duration=2.0,
                    transition=1.0).replace(output={"preset": "ultrafast", "overwrite": True})
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for style in RUNS:
                started = time.monotonic()
                result = Stylizer(base.replace(style=style)).video(
                    args.clip, Path(folder) / "out.mp4")
                print(f"round {round_ + 1} | {style:24s} | {result.frames} frames | "
                      f"{time.monotonic() - started:5.1f} s")
    print(f"\n    python -m benchmarks.schedule --clip {args.clip}")


if __name__ == "__main__":
    main()
