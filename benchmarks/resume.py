"""What a resumable job costs against one pass, and whether its segment seams show.

For one clip and style it runs the single-pass pipeline and the resumable path
(`Settings.resume`, segments of `--segment` seconds), each at every `--crf`, and
reports wall time, frames the network computed (warm-up included), and the warping error
(Lai et al. 2018, `vidstyle.evaluate.warping_errors`) on the frame pairs straddling each
seam next to the single pass's error on the very same pairs. Results: docs/resume.md.

    python -m benchmarks.resume --clip samples/cup.mp4 --style scream --segment 2.24

One torch thread (both runs alike), so a busy shared machine distorts both the same way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from vidstyle.api import Stylizer  # noqa: E402
from vidstyle.config import Settings  # noqa: E402
from vidstyle.engines.factory import load_network  # noqa: E402
from vidstyle.evaluate import read_frames, warping_errors  # noqa: E402
from vidstyle.media.segments import plan_segments, scan_video  # noqa: E402


class Counting(nn.Module):
    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.size_multiple = getattr(network, "size_multiple", 1)
        self.frames = 0

    def forward(self, x):
        self.frames += x.shape[0]
        return self.network(x)


def run(clip: Path, settings: Settings, dst: Path) -> tuple[float, int]:
    network = Counting(load_network(settings, torch.device("cpu")))
    started = time.monotonic()
    Stylizer(settings, network=network).video(clip, dst)
    return time.monotonic() - started, network.frames


def seam_pairs(clip: Path, segment: float) -> list[int]:
    """Indices of the warping-error pairs (i-1, i) whose frame i starts a segment."""
    index = scan_video(clip)
    position = {pts: i for i, pts in enumerate(index.frame_pts)}
    return [position[s.start_pts] - 1 for s in plan_segments(index, seconds=segment)[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=Path("samples/cup.mp4"))
    parser.add_argument("--style", default="scream")
    parser.add_argument("--segment", type=float, default=2.24)
    parser.add_argument("--max-size", type=int, default=256)
    parser.add_argument("--crf", type=int, nargs="+", default=[18, 0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    seams = seam_pairs(args.clip, args.segment)
    inputs = list(read_frames(args.clip))
    print(f"{args.clip}, {args.style}, --max-size {args.max_size}, segments of "
          f"{args.segment} s ({len(seams) + 1} segments), 1 torch thread")
    print("| crf | run | wall s | frames computed | warp err at seams | single pass, same"
          " pairs | warp err elsewhere |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for crf in args.crf:
            base = Settings(style=args.style, device="cpu", max_size=args.max_size,
                            resume_segment=args.segment).replace(
                output={"preset": "ultrafast", "crf": crf, "overwrite": True})
            errors = {}
            for name, settings in (("single pass", base), ("resumable", base.replace(
                    resume=True))):
                dst = Path(folder) / f"{name.replace(' ', '_')}.mp4"
                seconds, frames = run(args.clip, settings, dst)
                errors[name] = warping_errors(list(read_frames(dst)), inputs)
                at = np.mean([errors[name][i] for i in seams])
                same = np.mean([errors["single pass"][i] for i in seams])
                rest = np.mean([e for i, e in enumerate(errors[name]) if i not in seams])
                print(f"| {crf} | {name} | {seconds:.1f} | {frames} | {at:.6f} | {same:.6f}"
                      f" | {rest:.6f} |")
    print(f"\n    python -m benchmarks.resume --clip {args.clip} --style {args.style} "
          f"--segment {args.segment} --max-size {args.max_size}")


if __name__ == "__main__":
    main()
