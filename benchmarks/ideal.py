"""The flicker a perfectly steady stylization would still read: the measures' own floor.

    python -m benchmarks.ideal CACHE --styles scream,preset:19 [--clips zoom,lowlight] \\
        [--frames 8] [--json OUT.json]

CACHE is the folder `tools/build_corpus.py` built (CACHE/corpus, CACHE/unpacked/photo).

A synthetic clip of the corpus is a camera moving over a photo, so a stylization that does
not flicker at all can be built for it: the style network paints the clip's whole canvas
once (the photo at the scale and exposure the camera sees, without the sensor noise), and
the clip's own camera path moves over that painting. Its texture is glued to the scene, as
a painter's would be; along the true motion it changes by resampling only. That video is
scored like `benchmarks.temporal sweep` scores a filter (eval's ratio with DIS fine flow,
the independent Farneback check, the ratio along the true motion), beside the same clip's
per-frame and default-filter outputs from the same run (`--configs` for other filters,
written as `benchmarks.temporal` writes them).

Where the steady painting itself reads over the issue's 1.5, no filter and no network that
keeps that look can pass on that clip by that measure: the estimated flow's error, times
the painted texture's contrast, is already more than 1.5 times the original's own
warping error. The row `(canvas)` is the control: the unpainted canvas moved the same way,
which should read about 1 (less: it has no sensor noise or encoder loss).

`--soften 0.5,0.8` adds, per Gaussian sigma (px), the steady painting and the default
filter's output with the network's frames softened by that blur first: how much of the
floor is texture finer than a sub-pixel move can carry (any interpolating warp, the
measures' own included, loses it). Beside each row, `texture`: the Gram distance (VGG-19,
the Gatys style layers, at the frame's own size) of its last frame to the per-frame
output's last frame, the look it moved away from (0 = the same texture; the last frame,
since a filter starts from the network's first frame as it is).

Clips with objects that move on their own (crossing) are left out: one painting cannot
follow two motions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from build_corpus import (  # noqa: E402
    SYNTH_CLIPS,
    fetch_sources,
    load_camera,
    load_corpus,
    read_rgb,
)

from benchmarks.temporal import apply_filter, network_outputs  # noqa: E402
from benchmarks.warping_check import frames_ratio  # noqa: E402
from benchmarks.warping_truth import truth_ratio  # noqa: E402
from vidstyle.evaluate import WarpingErrorMeter, mean_error, read_frames  # noqa: E402

CANVAS = "(canvas)"


def clip_canvas(photo: np.ndarray, params: dict) -> np.ndarray:
    """The picture the clip's camera moves over, as `build_corpus.camera_move` makes it
    (1.5x the window, area-downsampled), at the clip's exposure, without its noise:
    float32 RGB 0-255."""
    width, height = params["size"]
    scale = 1.5 * max(width / photo.shape[1], height / photo.shape[0])
    base = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return np.clip(base.astype(np.float32) * params.get("gain", 1.0), 0, 255)


def film(canvas: np.ndarray, camera: list, size: tuple[int, int], count: int
         ) -> list[np.ndarray]:
    """The first `count` frames of the camera path over `canvas`, as the clip was filmed
    (the same warp, interpolation and border), RGB uint8."""
    frames = []
    for zoom, bx, by in camera[:count]:
        matrix = np.array([[zoom, 0, bx], [0, zoom, by]])
        image = cv2.warpAffine(canvas, matrix, size, flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(image, 0, 255).round().astype(np.uint8))
    return frames


def painted(style: str, canvas: np.ndarray) -> np.ndarray:
    """`canvas` through the style network once, as the API's engine runs it, float 0-255."""
    image = canvas.round().astype(np.uint8)
    [styled], _ = network_outputs(style, [image])
    return styled.float().mul(255).permute(1, 2, 0).numpy()


def soften(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of `sigma` px (float or uint8 RGB; the same type back)."""
    return cv2.GaussianBlur(image, (0, 0), sigma)


def softened_outputs(styled: list[torch.Tensor], sigma: float) -> list[torch.Tensor]:
    """The network's frames (3 x H x W, 0-1) through `soften`."""
    return [torch.from_numpy(soften(s.float().permute(1, 2, 0).numpy(), sigma))
            .permute(2, 0, 1).contiguous() for s in styled]


class TextureMeter:
    """Gram distance at full size of an output frame to the per-frame output's same frame."""

    def __init__(self, reference: np.ndarray) -> None:
        from vidstyle.config import GatysSettings
        from vidstyle.losses import style_grams
        from vidstyle.styles.lossnet import load_vgg19

        knobs = GatysSettings()
        self.layers = knobs.style_layers
        self.vgg = load_vgg19(source=knobs.loss_net, device="cpu")
        with torch.no_grad():
            self.grams = style_grams(self.tensor(reference), self.vgg, self.layers)

    @staticmethod
    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float().div(255)

    def __call__(self, image: np.ndarray) -> float:
        from vidstyle.losses import style_distance

        return float(style_distance(self.tensor(image), self.grams, self.vgg, self.layers))


def score(frames: list[np.ndarray], outputs: dict[str, list[np.ndarray]], camera: list
          ) -> dict[str, dict]:
    """Per output: eval's ratio (one meter for all, so one flow), independent, truth."""
    names = list(outputs)
    meter = WarpingErrorMeter(outputs=len(names) + 1)
    for index, frame in enumerate(frames):
        meter.add(frame, *(outputs[name][index] for name in names), frame)
    floor = mean_error(meter.errors[-1])
    return {name: {"eval": mean_error(errors) / floor,
                   "independent": frames_ratio(frames, outputs[name])["ratio"],
                   "truth": truth_ratio(frames, outputs[name], camera)["ratio"]}
            for name, errors in zip(names, meter.errors, strict=False)}


def camera_clips(corpus: Path, wanted: list[str] | None):
    """(clip, photo, params, camera path) of the synthetic clips with a camera move only."""
    settings = {clip.name: (photo, params) for photo, clip, params in SYNTH_CLIPS}
    for clip in load_corpus(corpus):
        camera = load_camera(corpus / clip.file)
        if not isinstance(camera, list) or clip.name not in settings:
            continue  # a real clip (no true motion) or one with moving objects
        if wanted and clip.name not in wanted:
            continue
        yield (clip, *settings[clip.name], camera)


def run(args) -> list[dict]:
    cache = Path(args.cache)
    photos = fetch_sources(cache)["photo"]
    rows = []
    print("| clip | style | output | eval | independent | true motion | texture |")
    print("|---|---|---|---:|---:|---:|---:|")
    wanted = args.clips.split(",") if args.clips else None
    for clip, photo, params, camera in camera_clips(cache / "corpus", wanted):
        frames = list(read_frames(cache / "corpus" / clip.file, args.frames))
        count, size = len(frames), (frames[0].shape[1], frames[0].shape[0])
        canvas = clip_canvas(read_rgb(photos / photo), params)
        outputs = {(CANVAS, "steady"): film(canvas, camera, size, count)}
        sigmas = [float(x) for x in args.soften.split(",")] if args.soften else []
        textures = {}
        for style in args.styles.split(","):
            painting = painted(style, canvas)
            styled, _ = network_outputs(style, frames)
            outputs[(style, "steady")] = film(painting, camera, size, count)
            for config in ("off", *args.configs.split(",")):
                outputs[(style, config)] = apply_filter(config, frames, styled)[0]
            for sigma in sigmas:
                outputs[(style, f"steady, soft {sigma:g}")] = film(
                    soften(painting, sigma), camera, size, count)
                outputs[(style, f"default, soft {sigma:g}")] = apply_filter(
                    "default", frames, softened_outputs(styled, sigma))[0]
            if args.texture:
                meter = TextureMeter(outputs[(style, "off")][-1])
                textures |= {key: meter(images[-1]) for key, images in outputs.items()
                             if key[0] == style}
        for (style, output), result in score(frames, outputs, camera).items():
            texture = textures.get((style, output), float("nan"))
            row = {"clip": clip.name, "held_out": clip.held_out, "style": style,
                   "output": output, **result, "texture": texture}
            rows.append(row)
            print(f"| {clip.name}{' (held out)' if clip.held_out else ''} | {style} | "
                  f"{output} | {result['eval']:.2f} | {result['independent']:.2f} | "
                  f"{result['truth']:.2f} | {texture:.3f} |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", help="tools/build_corpus.py's folder (holds corpus/)")
    parser.add_argument("--styles", default="scream,preset:19")
    parser.add_argument("--clips", help="comma-separated synthetic clip names (default: all)")
    parser.add_argument("--frames", type=int, default=8, help="first N frames per clip")
    parser.add_argument("--configs", default="default",
                        help="filters to score beside the per-frame output "
                             "(benchmarks.temporal's configuration strings)")
    parser.add_argument("--soften", help="comma-separated blur sigmas (px) to add rows for")
    parser.add_argument("--no-texture", dest="texture", action="store_false",
                        help="skip the full-size VGG-19 texture column")
    parser.add_argument("--json", help="also write the rows as JSON here")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print("command: python -m benchmarks.ideal " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
