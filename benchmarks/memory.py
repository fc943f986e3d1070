"""Peak memory of `vidstyle apply` on a short and a long clip: it must not grow with length.

    python -m benchmarks.memory [--clip samples/bigbuckbunny.mp4] [--seconds 5,60]
        [--style golden_haze] [--max-size 320] [--device auto]

The long clip is the sample looped (packets copied, timestamps shifted: no re-encoding,
audio included), whole loops up to at least each length in `--seconds`. Each length runs
`vidstyle apply` in a fresh process; this one samples that process's resident memory (RSS,
from /proc) every 0.2 s and reports the peak and the RSS at each quarter of the run, so a
slow climb shows as well as a spike. On CUDA the child also reports
`torch.cuda.max_memory_allocated`. The three pipeline threads are joined by bounded
queues, so the peak should be the same for 5 s and 60 s.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

from vidstyle.media.probe import probe

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EVERY_S = 0.2
CHILD_CODE = """
import json, sys, torch
from vidstyle import Settings, stylize_video
settings = Settings(**json.loads(sys.argv[3])).validate()
result = stylize_video(sys.argv[1], sys.argv[2], settings)
gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
print(json.dumps({"frames": result.frames, "device": result.device, "gpu_bytes": gpu}))
"""


def looped_clip(clip: Path, seconds: float, out: Path) -> Path:
    """`clip` repeated until it lasts `seconds`, every stream's packets copied."""
    with av.open(str(clip)) as source:
        length = max(float(s.duration * s.time_base) for s in source.streams if s.duration)
    # A little silence between loops keeps every stream's timestamps increasing.
    period = math.ceil(length * 10) / 10
    loops = max(1, math.ceil(seconds / period))
    with av.open(str(out), "w") as target:
        with av.open(str(clip)) as source:
            outputs = {s.index: target.add_stream_from_template(s) for s in source.streams
                       if s.type in ("video", "audio")}
        for loop in range(loops):
            with av.open(str(clip)) as source:
                for packet in source.demux(*[source.streams[i] for i in outputs]):
                    if packet.dts is None or packet.size == 0:
                        continue
                    shift = int(Fraction(loop * period) / packet.time_base)
                    packet.pts = None if packet.pts is None else packet.pts + shift
                    packet.dts += shift
                    packet.stream = outputs[packet.stream.index]
                    target.mux(packet)
    return out


def rss_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measured_run(clip: Path, out: Path, settings: dict) -> dict:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_CODE, str(clip), str(out), json.dumps(settings)],
        stdout=subprocess.PIPE, text=True,
    )
    samples, started = [], time.perf_counter()
    while child.poll() is None:
        samples.append(rss_bytes(child.pid))
        time.sleep(SAMPLE_EVERY_S)
    output, _ = child.communicate()
    if child.returncode:
        raise SystemExit(f"vidstyle failed on {clip} (exit {child.returncode})")
    result = json.loads(output.strip().splitlines()[-1])
    samples = [s for s in samples if s] or [0]
    quarters = [samples[min(len(samples) - 1, len(samples) * q // 4)] for q in (1, 2, 3, 4)]
    return {**result, "seconds": time.perf_counter() - started, "peak": max(samples),
            "quarters": quarters}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, default=ROOT / "samples" / "bigbuckbunny.mp4")
    parser.add_argument("--seconds", default="5,60", help="clip lengths to compare")
    parser.add_argument("--style", default="golden_haze")
    parser.add_argument("--max-size", type=int, default=320)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    settings = {"style": args.style, "max_size": args.max_size, "device": args.device}

    mib = 1024 * 1024
    print(f"clip {args.clip.name} looped; style {args.style}; network at long side "
          f"{args.max_size}; device {args.device}")
    print("| clip length | frames | wall s | peak RSS MiB | RSS at 25/50/75/100% MiB "
          "| peak GPU MiB |")
    print("|---:|---:|---:|---:|---|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for seconds in (float(s) for s in args.seconds.split(",")):
            clip = looped_clip(args.clip, seconds, Path(folder) / f"loop{seconds:g}.mp4")
            length = probe(clip).duration
            run = measured_run(clip, Path(folder) / f"out{seconds:g}.mp4", settings)
            quarters = " / ".join(f"{q / mib:.0f}" for q in run["quarters"])
            print(f"| {length:.1f} s | {run['frames']} | {run['seconds']:.0f} "
                  f"| {run['peak'] / mib:.0f} | {quarters} | {run['gpu_bytes'] / mib:.0f} |")
    print(f"command: python -m benchmarks.memory --clip {args.clip} --seconds {args.seconds} "
          f"--style {args.style} --max-size {args.max_size} --device {args.device}")


if __name__ == "__main__":
    main()
