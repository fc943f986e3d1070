"""Every CUDA path, once, in one table: the proof to run the day a GPU is lent.

    python -m benchmarks.gpu_check [--device auto] [--budget 420] [--seconds 1.5]

Exercises fp16 and bf16 autocast, pinned memory with non-blocking copies, batches of
1/4/8/16, the compiled (engines/compiled.py packages) and eager network, end to end through
`Stylizer.video` with x264 and with NVENC, the Gatys engine, and one training step. Prints
one table: model-only and end-to-end fps at 720p/1080p/2160p, the GPU memory peak of each
row, and each path's status (ok, failed with the error, or skipped with the reason).

Built to finish within 8 minutes on one GPU: each measurement runs `--seconds`, and once
`--budget` seconds have gone the remaining rows are skipped, not run. Without CUDA every
GPU path is reported skipped and only the CPU fallback runs (256x144 frames), quickly;
without PyAV (or the sample clip) the end-to-end and NVENC rows are skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "samples" / "bigbuckbunny.mp4"
PHOTO = ROOT / "samples" / "photos" / "butterfly.jpg"
HEIGHTS = (720, 1080, 2160)
BATCHES = (1, 4, 8, 16)
GPU_BATCH = 4  # the engine's default on a GPU (vidstyle.device.resolve_batch)
CPU_HEIGHT = 144  # the CPU fallback's frames: seconds, not minutes, on a shared 2-core CPU


@dataclass
class Row:
    path: str
    size: str = "-"
    batch: str = "-"
    fps: float | None = None
    peak_mib: float | None = None
    status: str = "ok"
    note: str = ""


class Checks:
    """Runs named checks within a time budget, collecting one `Row` each."""

    def __init__(self, device: torch.device, budget: float, seconds: float) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.deadline = time.monotonic() + budget
        self.seconds = seconds
        self.rows: list[Row] = []

    def run(self, row: Row, check: Callable[[], float | None], *, needs_cuda: bool = True,
            needs_av: bool = False) -> Row:
        if needs_cuda and not self.cuda:
            row.status, row.note = "skipped", "no CUDA device"
        elif needs_av and not have_av():
            row.status, row.note = "skipped", "PyAV or the sample clip missing"
        elif time.monotonic() > self.deadline:
            row.status, row.note = "skipped", "time budget spent"
        else:
            if self.cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(self.device)
            try:
                row.fps = check()
            except Exception as exc:  # noqa: BLE001 - a failed path is a row, not a stop
                row.status = "failed"
                row.note = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
                traceback.print_exc()
            if self.cuda:
                row.peak_mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        self.rows.append(row)
        return row


def have_av() -> bool:
    return importlib.util.find_spec("av") is not None and CLIP.is_file()


def johnson() -> torch.nn.Module:
    from vidstyle.networks.johnson import JohnsonNet

    return JohnsonNet().eval()


def model_fps(engine, height: int, batch: int, seconds: float) -> float:
    """The engine's `stylize` (uint8 host frames in and out) on one batch, repeated."""
    width = height * 16 // 9
    frames = torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8)
    engine.stylize(frames)  # warm-up: kernel choice, allocator, package load
    sync(engine.device)
    runs, started = 0, time.perf_counter()
    while runs < 2 or time.perf_counter() - started < seconds:
        out = engine.stylize(frames)
        runs += 1
    sync(engine.device)
    assert out.shape == frames.shape and out.dtype == torch.uint8
    return runs * batch / (time.perf_counter() - started)


def compiled_fps(device: torch.device, height: int, seconds: float) -> float:
    """`model_fps` through a compiled package; fails (not a quiet eager run) without one."""
    import warnings

    from vidstyle.engines.fast import FastEngine

    engine = FastEngine(johnson(), device, torch.float16, compile=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the fallback to eager warns
        fps = model_fps(engine, height, GPU_BATCH, seconds)
    if engine.compiled.fell_back:
        raise RuntimeError("no compiled package: the network ran eagerly")
    return fps


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pinned_copy_fps(device: torch.device, height: int, seconds: float) -> float:
    """Pinned host frames to the device and back, non-blocking; checks the bytes survive."""
    frames = torch.randint(0, 256, (GPU_BATCH, height, height * 16 // 9, 3),
                           dtype=torch.uint8).pin_memory()
    assert frames.is_pinned()
    back = torch.empty_like(frames).pin_memory()
    runs, started = 0, time.perf_counter()
    while runs < 2 or time.perf_counter() - started < seconds:
        on_device = frames.to(device, non_blocking=True)
        back.copy_(on_device, non_blocking=True)
        torch.cuda.current_stream(device).synchronize()
        runs += 1
    assert torch.equal(back, frames)
    return runs * GPU_BATCH / (time.perf_counter() - started)


def end_to_end_fps(device: torch.device, clip: Path, codec: str, seconds: float) -> float:
    from vidstyle import Settings, Stylizer

    settings = Settings(style="scream", device=device.type, duration=seconds).replace(
        output={"codec": codec, "overwrite": True})
    with tempfile.TemporaryDirectory() as folder:
        result = Stylizer(settings).video(clip, Path(folder) / "out.mp4")
    return result.fps


def gatys_fps(device: torch.device) -> float:
    import cv2

    from vidstyle import Settings, Stylizer

    settings = Settings(style="scream", engine="gatys", device=device.type, max_size=512)
    settings = settings.replace(gatys={"iterations": 20})
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "photo.png"
        cv2.imwrite(str(photo), cv2.imread(str(PHOTO)))
        started = time.perf_counter()
        Stylizer(settings).image(photo, Path(folder) / "out.png")
    return 1.0 / (time.perf_counter() - started)


def training_step_fps(device: torch.device) -> float:
    from vidstyle.train import TrainSettings, train_style

    settings = TrainSettings(steps=1, size=128, batch=GPU_BATCH, device=device.type,
                             checkpoint_every=1, video_frames=4)
    with tempfile.TemporaryDirectory() as folder:
        result = train_style(PHOTO, PHOTO.parent, Path(folder) / "net.safetensors",
                             settings=settings)
    assert result.steps == 1
    return 1.0 / result.seconds


def scaled_clips(folder: Path) -> dict[int, Path]:
    from benchmarks.peer import scaled_copy

    return {h: scaled_copy(CLIP, h * 16 // 9, folder / f"in{h}.mp4") for h in HEIGHTS}


def run_all(device: torch.device, budget: float, seconds: float) -> list[Row]:
    from vidstyle.engines.fast import FastEngine

    checks = Checks(device, budget, seconds)
    cpu = torch.device("cpu")
    # CPU fallback: the same engine code, eager, on small frames; proves the script itself.
    if not checks.cuda:
        checks.run(Row("cpu fallback: eager fp32", f"{CPU_HEIGHT * 16 // 9}x{CPU_HEIGHT}", "1"),
                   lambda: model_fps(FastEngine(johnson(), cpu), CPU_HEIGHT, 1, 0.0),
                   needs_cuda=False)
    for dtype, name in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        for height in HEIGHTS:
            checks.run(Row(f"model eager {name} autocast", f"{height * 16 // 9}x{height}",
                           str(GPU_BATCH)),
                       lambda d=dtype, h=height: model_fps(
                           FastEngine(johnson(), device, d), h, GPU_BATCH, seconds))
    for batch in BATCHES:
        checks.run(Row("model eager fp16, batch sweep", "1920x1080", str(batch)),
                   lambda b=batch: model_fps(
                       FastEngine(johnson(), device, torch.float16), 1080, b, seconds))
    for height in (720, 1080):
        checks.run(Row("model compiled fp16 (cached package)", f"{height * 16 // 9}x{height}",
                       str(GPU_BATCH)),
                   lambda h=height: compiled_fps(device, h, seconds))
    checks.run(Row("pinned memory, non-blocking copies", "1920x1080", str(GPU_BATCH)),
               lambda: pinned_copy_fps(device, 1080, seconds))
    with tempfile.TemporaryDirectory() as folder:
        clips: dict[int, Path] = {}

        def clip(height: int) -> Path:
            if not clips:
                clips.update(scaled_clips(Path(folder)))
            return clips[height]

        for height in HEIGHTS:
            checks.run(Row("end to end, x264", f"{height * 16 // 9}x{height}", str(GPU_BATCH)),
                       lambda h=height: end_to_end_fps(device, clip(h), "libx264", seconds * 2),
                       needs_av=True)
        for height in (1080, 2160):
            checks.run(Row("end to end, NVENC (h264_nvenc)", f"{height * 16 // 9}x{height}",
                           str(GPU_BATCH)),
                       lambda h=height: end_to_end_fps(device, clip(h), "h264_nvenc",
                                                       seconds * 2),
                       needs_av=True)
    checks.run(Row("Gatys engine, 20 iterations (images/s)", "512 long side", "1"),
               lambda: gatys_fps(device))
    checks.run(Row("training step, fp16 autocast (steps/s)", "128x128", str(GPU_BATCH)),
               lambda: training_step_fps(device))
    return checks.rows


def print_table(rows: list[Row], device: torch.device) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {device} ({name}), torch {torch.__version__}")
    print("| path | frame | batch | fps | GPU peak MiB | status | note |")
    print("|---|---|---:|---:|---:|---|---|")
    for row in rows:
        fps = "-" if row.fps is None else f"{row.fps:.2f}"
        peak = "-" if row.peak_mib is None else f"{row.peak_mib:.0f}"
        print(f"| {row.path} | {row.size} | {row.batch} | {fps} | {peak} | {row.status} "
              f"| {row.note} |")


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for all rows")
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    args = parser.parse_args(argv)
    wanted = args.device
    if wanted == "auto":
        wanted = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(wanted)
    started = time.monotonic()
    rows = run_all(device, args.budget, args.seconds)
    print_table(rows, device)
    print(f"{time.monotonic() - started:.0f} s; command: python -m benchmarks.gpu_check "
          f"--device {args.device} --budget {args.budget:g} --seconds {args.seconds:g}")
    return rows


if __name__ == "__main__":
    main()
