"""int8 through PyTorch's PT2E quantization for x86, against the bf16 network, on real frames.

    pip install torchao    # PT2E lives in torchao since torch 2.10; not a dependency
    python -m benchmarks.quantized --style preset:19 --clip samples/cup.mp4 --size 640

The network of `--style` (as `vidstyle.styles.load_style` builds it) is exported with
`torch.export`, annotated by torchao's `X86InductorQuantizer` (static per-tensor
activations, per-channel weights, the oneDNN/VNNI recipe), calibrated on the first half of
`--frames` real frames of `--clip`, converted, and compiled by Inductor with freezing (which
is what lowers the quantize/dequantize pairs to oneDNN int8 kernels). Its output on the
*other* half of the frames (not seen in calibration) is compared with the float32 output:
PSNR, and the VGG-19 style and content distances of `vidstyle eval` against those of the
float32 output (a preset has no painting, so no style distance). Speed: frames per second
of the network alone, eager at the CPU's automatic precision (the shipped default: bf16
autocast where the CPU has native bf16, else float32), compiled at that precision,
compiled int8, and, on bf16 CPUs, int8 with bf16 between the int8 convolutions;
alternating rounds, best of `--rounds`.

The issue's bar for adopting a backend: faster, PSNR at least 35 dB against float32 and
style/content distance within 2%. This script only measures; it adopts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time

import numpy as np
import torch

from vidstyle.device import cpu_has_fast_bf16
from vidstyle.errors import StyleError
from vidstyle.evaluate import PerceptualMeter, read_frames
from vidstyle.images import fit_long_side, resize_image
from vidstyle.styles import load_style

PSNR_BAR = 35.0
DISTANCE_BAR = 0.02


def real_frames(clip: str, count: int, size: int, multiple: int) -> list[np.ndarray]:
    """The first `count` frames of `clip`, long side `size`, both sides cut to `multiple`."""
    frames = []
    for frame in read_frames(clip, count):
        height, width = fit_long_side(*frame.shape[:2], size)
        height, width = height - height % multiple, width - width % multiple
        frames.append(resize_image(frame, (height, width)))
    return frames


def to_batch(frame: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float().div(255)
    return x.contiguous(memory_format=torch.channels_last)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float().clamp(0, 1) - b.float().clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def quantize_int8(network: torch.nn.Module, calibration: list[torch.Tensor],
                  keep_float: int = 0):
    """PT2E static int8 for x86 (torchao), calibrated on real frames; not yet compiled.

    `keep_float` convolutions at each end stay in floating point (the first sees the raw
    picture, the last makes it; the usual place where int8 costs the most accuracy)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    quantizer = X86InductorQuantizer()
    quantizer.set_global(get_default_x86_inductor_quantization_config())
    convolutions = [name for name, module in network.named_modules()
                    if isinstance(module, torch.nn.Conv2d)]
    if keep_float:
        for name in convolutions[:keep_float] + convolutions[-keep_float:]:
            quantizer.set_module_name_qconfig(name, None)
    exported = torch.export.export(network, (calibration[0],)).module()
    prepared = prepare_pt2e(exported, quantizer)
    for x in calibration:
        prepared(x)
    return convert_pt2e(prepared)


def compiled(module: torch.nn.Module, example: torch.Tensor, autocast: bool):
    """Inductor with freezing (weights folded as constants: required for int8 conv)."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    fn = torch.compile(module)
    context = (torch.autocast("cpu", dtype=torch.bfloat16) if autocast
               else contextlib.nullcontext())

    def run(x: torch.Tensor) -> torch.Tensor:
        with context:
            return fn(x)

    started = time.perf_counter()
    run(example)
    run(example)
    return run, time.perf_counter() - started


def eager(network: torch.nn.Module, autocast: bool):
    def run(x: torch.Tensor) -> torch.Tensor:
        with (torch.autocast("cpu", dtype=torch.bfloat16) if autocast
              else contextlib.nullcontext()):
            return network(x)

    return run


def fps(run, x: torch.Tensor, seconds: float) -> float:
    run(x)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or count < 2:
        run(x)
        count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="preset:19")
    parser.add_argument("--clip", default="samples/cup.mp4")
    parser.add_argument("--size", type=int, default=640, help="long side of the frames")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--vgg-size", type=int, default=384)
    parser.add_argument("--keep-float", type=int, default=0,
                        help="convolutions at each end left in floating point")
    args = parser.parse_args()

    torch.manual_seed(0)
    network = load_style(args.style, device="cpu").eval()
    multiple = getattr(network, "size_multiple", 4)
    frames = real_frames(args.clip, args.frames, args.size, multiple)
    half = len(frames) // 2
    calibration = [to_batch(f) for f in frames[:half]]
    held_out = [to_batch(f) for f in frames[half:]]
    height, width = frames[0].shape[:2]
    print(f"{args.style} on {args.clip}: {width}x{height}, calibrated on {half} frames, "
          f"scored on {len(held_out)} others; torch threads {torch.get_num_threads()}")

    # Without native bf16 (an AVX2 CPU), autocast to bf16 is emulated and slow, so the
    # baseline there is float32, as `--precision auto` runs it.
    bf16 = cpu_has_fast_bf16()
    default = "bf16" if bf16 else "fp32"
    with torch.inference_mode():
        reference = [network(x) for x in held_out]
    candidates = {f"eager {default} (default)": eager(network, bf16)}
    with torch.no_grad():
        candidates[f"compiled {default}"], seconds = compiled(network, calibration[0], bf16)
        print(f"compiled {default} built in {seconds:.0f} s")
        int8 = quantize_int8(network, calibration, args.keep_float)
        candidates["compiled int8"], seconds = compiled(int8, calibration[0], False)
        print(f"compiled int8 built in {seconds:.0f} s")
        if bf16:
            candidates["compiled int8 + bf16"], seconds = compiled(int8, calibration[0], True)
            print(f"compiled int8 + bf16 built in {seconds:.0f} s")

        try:
            meter = PerceptualMeter(args.style, "cpu", args.vgg_size)
        except StyleError:  # a preset of the 26-style network: no painting to compare with
            meter = PerceptualMeter(None, "cpu", args.vgg_size)
        originals = frames[half:]

        def distances(outputs: list[torch.Tensor]) -> tuple[float, float]:
            scores = [meter.measure(o, to_image(y)) for o, y in zip(originals, outputs,
                                                                    strict=True)]
            style = math.nan if scores[0][0] is None else float(np.mean([s for s, _ in scores]))
            return style, float(np.mean([c for _, c in scores]))

        base_style, base_content = distances(reference)
        quality = {}
        for name, run in candidates.items():
            outputs = [run(x) for x in held_out]
            style, content = distances(outputs)
            quality[name] = (min(psnr(y, r) for y, r in zip(outputs, reference, strict=True)),
                             style / base_style - 1, content / base_content - 1)
        speed = {name: 0.0 for name in candidates}
        for _ in range(args.rounds):
            for name, run in candidates.items():
                speed[name] = max(speed[name], fps(run, held_out[0], args.seconds))

    base = speed[f"eager {default} (default)"]
    print(f"\n| network | fps | vs eager {default} | worst PSNR vs fp32 (dB) | style dist. | "
          "content dist. | passes the bar |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in candidates:
        worst, style, content = quality[name]
        ok = (worst >= PSNR_BAR and abs(content) <= DISTANCE_BAR
              and (math.isnan(style) or abs(style) <= DISTANCE_BAR))
        print(f"| {name} | {speed[name]:.2f} | {speed[name] / base:.2f}x | {worst:.1f} | "
              f"{style:+.1%} | {content:+.1%} | {'yes' if ok else 'no'} |")


def to_image(y: torch.Tensor) -> np.ndarray:
    return y[0].float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()


if __name__ == "__main__":
    main()
