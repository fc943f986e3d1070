"""Model-only speed of each style network against the machine's matmul ceiling.

    python -m benchmarks.networks [--device auto] [--sizes 360,720,1080]
        [--precisions fp32,bf16] [--networks johnson,conditional,arbitrary]
        [--batch 1] [--seconds 3] [--threads N] [--compile] [--onnxruntime] [--openvino]
    python -m benchmarks.networks --startup [--networks conditional] [--sizes 360]

For every network, frame height and precision: frames per second of the network alone
(uint8 frames in and out, as the engine runs it), the FLOPs of one frame through the
network as defined (counted by `torch.utils.flop_counter`), the GFLOP/s that makes, and
that as a share of the dense matmul ceiling in the same precision, measured in the same
run with the same number of threads (`--threads`, default: the engine's own count,
`vidstyle.engines.fast.network_threads`).
`--compile` adds rows for the compiled network (AOTInductor packages from the cache,
engines/compiled.py; frames padded to the 16-pixel bucket, FLOPs counted unpadded);
`--onnxruntime` adds ONNX Runtime (CPU) rows for the same graphs, `--openvino` OpenVINO's CPU
plugin (fp32 and bf16 inference precision, same threads; `pip install openvino`).
Random weights: throughput does not depend on their values.

`--startup`: seconds from a fresh Python process to its first stylized frame (imports,
network, first call), eager against compiled with an empty package cache (the first run on
a machine) and with the cache that run left (every later run); then the compiled fps.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.ceiling import matmul_gflops, synchronize
from vidstyle.device import resolve_device, resolve_precision
from vidstyle.engines.fast import FastEngine, network_threads
from vidstyle.networks.johnson import ReflectConv, UpsampleConv

ASPECT = 16 / 9


def build_network(name: str) -> torch.nn.Module:
    if name == "johnson":
        from vidstyle.networks.johnson import JohnsonNet

        return JohnsonNet()
    if name == "conditional":
        from vidstyle.networks.conditional import MultiStyleNet, one_hot_style

        return MultiStyleNet().set_style_weights(one_hot_style(0))
    if name == "arbitrary":
        from vidstyle.networks.arbitrary import STYLE_DIM, ArbitraryTransformer

        return _Bound(ArbitraryTransformer(), torch.randn(1, STYLE_DIM))
    raise SystemExit(f"unknown network {name!r}")


class _Bound(torch.nn.Module):
    """A conditioned network with its style input fixed (what load_style returns)."""

    def __init__(self, network: torch.nn.Module, style: torch.Tensor) -> None:
        super().__init__()
        self.network = network
        self.size_multiple = network.size_multiple
        self.register_buffer("style", style)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x, self.style.expand(x.shape[0], -1))


def frame_flops(network: torch.nn.Module, height: int, width: int) -> int:
    """FLOPs of one frame through the network *as defined*: 3x3 convs on the upsampled image.

    `UpsampleConv` computes the same thing with 2.25x fewer multiply-adds; counting those
    would make a faster network look less efficient. Against the architecture's FLOPs the
    GFLOP/s column is an effective rate, comparable across implementations and papers.
    """
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), _upsample_as_defined():
        network(torch.rand(1, 3, height, width))
    return counter.get_total_flops()


@contextlib.contextmanager
def _upsample_as_defined():
    def defined(layer: UpsampleConv, x: torch.Tensor) -> torch.Tensor:
        return ReflectConv.forward(layer, F.interpolate(x, scale_factor=2.0, mode="nearest"))

    fast = UpsampleConv.forward
    UpsampleConv.forward = defined
    try:
        yield
    finally:
        UpsampleConv.forward = fast


def frames_per_second(engine: FastEngine, frames: torch.Tensor, seconds: float) -> float:
    engine.stylize(frames)  # warm-up: kernel choice, allocator, compilation
    synchronize(engine.device)
    runs, started = 0, time.perf_counter()
    while True:
        engine.stylize(frames)
        runs += 1
        synchronize(engine.device)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and runs >= 2:
            break
    return runs * frames.shape[0] / elapsed


def onnxruntime_fps(network, height, width, batch, seconds) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import io

    import numpy as np

    buffer = io.BytesIO()
    example = torch.rand(batch, 3, height, width)
    torch.onnx.export(network, (example,), buffer, input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    feed = {"x": np.random.rand(batch, 3, height, width).astype(np.float32)}
    session.run(None, feed)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or runs < 2:
        session.run(None, feed)
        runs += 1
    return runs * batch / (time.perf_counter() - started)


def openvino_fps(network, height, width, batch, seconds, precision: str,
                 threads: int) -> float | None:
    """OpenVINO's CPU plugin on the same network (converted from the PyTorch module), at
    its fp32 or bf16 inference precision, on `threads` threads; None when not installed.
    Input and output are float32 NCHW; the uint8 conversions of the engine are not timed,
    which favours OpenVINO slightly."""
    try:
        import openvino as ov
    except ImportError:
        return None
    import numpy as np

    example = torch.rand(batch, 3, height, width)
    model = ov.convert_model(network, example_input=example)
    compiled = ov.Core().compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision],
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    feed = np.random.rand(batch, 3, height, width).astype(np.float32)
    request.infer({0: feed})
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or runs < 2:
        request.infer({0: feed})
        runs += 1
    return runs * batch / (time.perf_counter() - started)


STARTUP_CHILD = """
import sys, time
started = time.perf_counter()
import torch
from benchmarks.networks import build_network
from vidstyle.device import resolve_precision
from vidstyle.engines.fast import FastEngine, network_threads
name, height, width, precision, compile = sys.argv[1:6]
torch.manual_seed(0)
engine = FastEngine(build_network(name).eval(), torch.device("cpu"),
                    resolve_precision(precision, torch.device("cpu")), compile=compile == "on")
engine.stylize(torch.randint(0, 256, (1, int(height), int(width), 3), dtype=torch.uint8))
print(time.perf_counter() - started)
"""


def startup_seconds(name: str, height: int, width: int, precision: str, compile: bool,
                    cache: str) -> float:
    """Fresh process to first frame, with `cache` as the package folder."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "VIDSTYLE_COMPILE_CACHE": cache}
    command = [sys.executable, "-c", STARTUP_CHILD, name, str(height), str(width), precision,
               "on" if compile else "off"]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


def startup_rows(args: argparse.Namespace, precisions: list[str]) -> None:
    import tempfile

    print("| network | frame | precision | eager start s | compiled, first run s "
          "| compiled, later runs s | later - eager s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name in args.networks.split(","):
        for height in (int(s) for s in args.sizes.split(",")):
            width = int(round(height * ASPECT / 4)) * 4
            for precision in precisions:
                with tempfile.TemporaryDirectory() as cache:
                    eager = startup_seconds(name, height, width, precision, False, cache)
                    cold = startup_seconds(name, height, width, precision, True, cache)
                    warm = startup_seconds(name, height, width, precision, True, cache)
                    eager = min(eager, startup_seconds(name, height, width, precision, False,
                                                       cache))
                print(f"| {name} | {width}x{height} | {precision} | {eager:.1f} | {cold:.1f} "
                      f"| {warm:.1f} | {warm - eager:+.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sizes", default="360,720,1080")
    parser.add_argument("--precisions", default=None, help="default: fp32 + the low one")
    parser.add_argument("--networks", default="johnson,conditional,arbitrary")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for the ceiling and the networks alike "
                             "(default: what the engine runs with)")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--onnxruntime", action="store_true")
    parser.add_argument("--openvino", action="store_true",
                        help="OpenVINO CPU rows (pip install openvino)")
    parser.add_argument("--startup", action="store_true",
                        help="fresh-process start-up: eager, compiled cold and cached")
    args = parser.parse_args()

    device = resolve_device(args.device)
    low = "fp16" if device.type == "cuda" else "bf16"
    precisions = (args.precisions or f"fp32,{low}").split(",")
    if args.startup:
        startup_rows(args, precisions)
        print(f"command: python -m benchmarks.networks --startup --networks {args.networks} "
              f"--sizes {args.sizes} --precisions {','.join(precisions)}")
        return
    if device.type == "cpu":
        # The ceiling and the networks on the same threads: the engine runs its network on
        # every core but one, and a two-thread ceiling against a one-thread network halves
        # the share. The variable keeps FastEngine from lowering the count chosen here.
        args.threads = args.threads or network_threads()
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        torch.set_num_threads(args.threads)
    ceiling = {p: matmul_gflops(resolve_precision(p, device), device) for p in precisions}

    print(f"device {device}, batch {args.batch}, threads {torch.get_num_threads()}; "
          "matmul ceiling: "
          + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in ceiling.items()))
    print("| network | frame | precision | backend | fps | GFLOP/frame | GFLOP/s | % of ceiling |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.networks.split(","):
        for height in (int(s) for s in args.sizes.split(",")):
            width = int(round(height * ASPECT / 4)) * 4
            network = build_network(name).eval()
            flops = frame_flops(network, height, width)
            frames = torch.randint(0, 256, (args.batch, height, width, 3), dtype=torch.uint8)
            backends = ["eager"] + (["compile"] if args.compile else [])
            for precision in precisions:
                dtype = resolve_precision(precision, device)
                for backend in backends:
                    engine = FastEngine(network, device, dtype, compile=backend == "compile")
                    fps = frames_per_second(engine, frames, args.seconds)
                    achieved = flops * fps / 1e9
                    print(f"| {name} | {width}x{height} | {precision} | {backend} | {fps:.2f} "
                          f"| {flops / 1e9:.1f} | {achieved:.0f} "
                          f"| {achieved / ceiling[precision]:.0%} |", flush=True)
            if args.onnxruntime and device.type == "cpu":
                fps = onnxruntime_fps(network, height, width, args.batch, args.seconds)
                if fps is not None:
                    achieved = flops * fps / 1e9
                    print(f"| {name} | {width}x{height} | fp32 | onnxruntime | {fps:.2f} "
                          f"| {flops / 1e9:.1f} | {achieved:.0f} "
                          f"| {achieved / ceiling['fp32']:.0%} |", flush=True)
            for precision in precisions if args.openvino and device.type == "cpu" else []:
                fps = openvino_fps(network, height, width, args.batch, args.seconds, precision,
                                   torch.get_num_threads())
                if fps is not None:
                    achieved = flops * fps / 1e9
                    print(f"| {name} | {width}x{height} | {precision} | openvino | {fps:.2f} "
                          f"| {flops / 1e9:.1f} | {achieved:.0f} "
                          f"| {achieved / ceiling[precision]:.0%} |", flush=True)
    print("command: python -m benchmarks.networks " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
        if v not in (None, False) and k not in ("compile", "onnxruntime", "openvino"))
        + (" --compile" if args.compile else "") + (" --onnxruntime" if args.onnxruntime else "")
        + (" --openvino" if args.openvino else ""))


if __name__ == "__main__":
    main()
