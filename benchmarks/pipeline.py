"""End-to-end fps against model-only fps: does the pipeline hide decode and encode?

    python -m benchmarks.pipeline [--clip samples/bigbuckbunny.mp4] [--style scream]
        [--device auto] [--precision auto] [--batch N] [--max-size PX] [--seconds S]
    python -m benchmarks.pipeline --null-network [--heights 720,1080] [--temporal flow]

Model-only: the engine's `stylize` on frames decoded in advance (the same work the
inference thread does, uint8 in and out). End-to-end: `vidstyle.stylize_video` on the same
frames of the same clip, decode + inference + encode + mux. Targets (issue 3): end-to-end
at least 80% of model-only on CPU, 95% on CUDA. The matmul ceiling of the same machine is
measured in the same run.

`--null-network`: everything but the network (which returns its input): decode, colour
conversion, the flow of the temporal filter, encode and mux, on the clip scaled to each of
`--heights` (x264 CRF 12 copies, audio copied). Reported per height: wall fps, and fps per
core, frames over the CPU seconds the process spent (all threads), which is what the CPU
side costs an accelerator that would otherwise wait for it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import torch
from torch import nn

from benchmarks.ceiling import ceilings, synchronize
from benchmarks.peer import scaled_copy
from vidstyle import Settings, Stylizer
from vidstyle.device import resolve_batch

ROOT = Path(__file__).resolve().parent.parent


def decode_frames(clip: Path, limit: int) -> list[torch.Tensor]:
    with av.open(str(clip)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
            if len(frames) == limit:
                break
    return frames


def model_only_fps(stylizer: Stylizer, frames: list[torch.Tensor], batch: int) -> float:
    engine = stylizer.engine
    engine.reset()  # no temporal state carried over from the previous run
    batches = [torch.stack(frames[i : i + batch]) for i in range(0, len(frames), batch)]
    engine.stylize(batches[0])  # warm-up: kernel selection, allocator
    synchronize(stylizer.device)
    started = time.perf_counter()
    for chunk in batches:
        engine.stylize(chunk)
    synchronize(stylizer.device)
    return len(frames) / (time.perf_counter() - started)


def end_to_end_fps(stylizer: Stylizer, clip: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        result = stylizer.video(clip, Path(folder) / f"bench{clip.suffix}")
    return result.fps, result.frames


class NullNetwork(nn.Module):
    """A style network that does nothing: the frame comes back as it went in."""

    size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def null_network_rows(args: argparse.Namespace) -> None:
    """End to end with `NullNetwork` at each height: wall fps and fps per core."""
    settings = Settings(style="scream", device=args.device, temporal=args.temporal,
                        duration=args.seconds).replace(output={"preset": args.preset})
    print(f"clip {args.clip.name} scaled; null network; temporal {args.temporal}; "
          f"x264 preset {args.preset}; {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| frame | frames | wall fps | CPU s | fps per core |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for height in (int(h) for h in args.heights.split(",")):
            clip = scaled_copy(args.clip, height * 16 // 9, Path(folder) / f"in{height}.mp4")
            stylizer = Stylizer(settings, network=NullNetwork())
            stylizer.engine.reset()
            cpu_started = time.process_time()
            fps, frames = end_to_end_fps(stylizer, clip)
            cpu = time.process_time() - cpu_started
            print(f"| {height * 16 // 9}x{height} | {frames} | {fps:.1f} | {cpu:.1f} "
                  f"| {frames / cpu:.1f} |", flush=True)
    print(f"command: python -m benchmarks.pipeline --null-network --clip {args.clip} "
          f"--heights {args.heights} --temporal {args.temporal} --preset {args.preset}"
          + (f" --seconds {args.seconds}" if args.seconds else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, default=ROOT / "samples" / "bigbuckbunny.mp4")
    parser.add_argument("--style", default="scream")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch", type=int, default=None, help="default: 1 on CPU, 4 on GPU")
    parser.add_argument("--max-size", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="only the first S seconds")
    parser.add_argument("--preset", default="veryfast", help="x264 preset")
    parser.add_argument("--temporal", default=Settings.temporal, help="off | blend | flow")
    parser.add_argument("--null-network", action="store_true",
                        help="everything but the network, at each of --heights")
    parser.add_argument("--heights", default="720,1080", help="with --null-network")
    args = parser.parse_args()
    if args.null_network:
        null_network_rows(args)
        return

    settings = Settings(
        style=args.style, device=args.device, precision=args.precision, batch=args.batch,
        max_size=args.max_size, duration=args.seconds, temporal=args.temporal,
    ).replace(output={"preset": args.preset})
    stylizer = Stylizer(settings)
    batch = resolve_batch(args.batch, stylizer.device)
    with av.open(str(args.clip)) as container:
        total = container.streams.video[0].frames
        rate = float(container.streams.video[0].average_rate)
    limit = int(args.seconds * rate) if args.seconds else total
    frames = decode_frames(args.clip, limit)
    height, width = frames[0].shape[:2]

    # Model-only before and after the end-to-end run, keeping the faster: a slow first pass
    # (allocator, kernel choice, a noisy neighbour) must not flatter the ratio.
    model = model_only_fps(stylizer, frames, batch)
    e2e, written = end_to_end_fps(stylizer, args.clip)
    model = max(model, model_only_fps(stylizer, frames, batch))
    limits = ceilings(stylizer.device)

    print(f"clip {args.clip.name} {width}x{height}, {written} frames, style {args.style}, "
          f"device {stylizer.device}, precision {settings.precision}->{stylizer.dtype}, "
          f"batch {batch}, temporal {args.temporal}, x264 preset {args.preset}")
    print("| measure | value |")
    print("|---|---|")
    print(f"| model-only fps | {model:.2f} |")
    print(f"| end-to-end fps | {e2e:.2f} |")
    print(f"| end-to-end / model-only | {e2e / model:.1%} |")
    for name, gflops in limits.items():
        print(f"| matmul ceiling {name} | {gflops:.0f} GFLOP/s |")
    print(f"command: python -m benchmarks.pipeline --clip {args.clip} --style {args.style} "
          f"--device {args.device} --precision {args.precision} --batch {batch}"
          + (f" --max-size {args.max_size}" if args.max_size else "")
          + (f" --seconds {args.seconds}" if args.seconds else "")
          + f" --temporal {args.temporal}")


if __name__ == "__main__":
    main()
