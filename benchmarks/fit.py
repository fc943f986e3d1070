"""Fitted styles: fit with chosen settings, and score any style on a folder of photos.

    python -m benchmarks.fit run PAINTING OUT.safetensors [--steps N] [--size S]
        [--style-size Z] [--content-weight W] [--stability-weight K] [--lr L] [--darken D]
    python -m benchmarks.fit score PAINTING PHOTOS SPEC [SPEC ...] [--gatys N] [--json F]
        [--style-scale X]
    python -m benchmarks.fit sheet PHOTOS OUT.jpg SPEC [SPEC ...] [--clips CLIP@N ...]

`run` is `vidstyle train`'s fit (`vidstyle.train.fit.fit_style`) with the knobs the
ablation varies, printing seconds per step and the preset the rows started from.

`score` stylizes every photo in the folder PHOTOS at its own size with each SPEC (any
``--style`` spec: a named style, a fitted-style file, a Johnson network file, ``preset:N``;
``gatys`` for the Gatys engine with N L-BFGS iterations on `--gatys-photos`, at the
meter's 384 px, cached in `--cache`) and
prints, per spec, the means over the photos of:

* style and content distance: `vidstyle.evaluate.PerceptualMeter` at 384 px with the
  painting's shipped Gram targets (the Gatys engine's objective terms; lower is closer);
* sharpness: `vidstyle.evaluate.sharpness`, the mean absolute Laplacian of the output's
  luma at full size (the photos' own figure is printed as ``photo``).

The photo folders used in docs/training.md: the validation photos the settings were
tuned on, and the held-out photos of the quality table (see tools/build_fit_set.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.fit_lab import load_result
from vidstyle.config import GatysSettings
from vidstyle.engines.fast import FastEngine
from vidstyle.engines.gatys import stylize_image_gatys
from vidstyle.evaluate import PerceptualMeter, read_frames, sharpness
from vidstyle.files import IMAGE_SUFFIXES, read_image
from vidstyle.images import fit_long_side, resize_image, to_tensor
from vidstyle.preview import fit_within, grid, labelled, write_image
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.resolve import load_style
from vidstyle.styles.targets import style_target
from vidstyle.train.fit import FitSettings, fit_style

METER_SIZE = 384  # the size the published figures were measured at


def run(args: argparse.Namespace) -> None:
    overrides = {k: v for k, v in {
        "steps": args.steps, "size": args.size, "style_size": args.style_size,
        "content_weight": args.content_weight, "stability_weight": args.stability_weight,
        "learning_rate": args.lr, "threads": args.threads, "max_darken": args.darken,
    }.items() if v is not None}
    settings = FitSettings(**overrides)
    result = fit_style(args.painting, args.output, settings=settings)
    print(f"{args.output}: {result.steps} steps in {result.seconds:.0f} s "
          f"({result.seconds / result.steps:.2f} s/step)")


def photos_in(folder: Path) -> dict[str, np.ndarray]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"{folder}: no photos")
    return {p.stem: read_image(p) for p in paths}


def network_for(spec: str) -> torch.nn.Module:
    """A --style spec, or ``lab:PARAMS:FILE`` for a `benchmarks.fit_lab` result."""
    if spec.startswith("lab:"):
        _, params, path = spec.split(":", 2)
        return load_result(Path(path), params)
    return load_style(spec)


def stylize(spec: str, photo: np.ndarray, style_scale: float | None) -> np.ndarray:
    engine = FastEngine(network_for(spec), torch.device("cpu"), style_scale=style_scale)
    return engine.stylize(torch.from_numpy(np.ascontiguousarray(photo))[None])[0].numpy()


def gatys(painting: str, photo: np.ndarray, iterations: int, cache: Path, key: str,
          vgg) -> np.ndarray:
    cached = cache / f"gatys_{key}_{iterations}.npy"
    if cached.is_file():
        return np.load(cached)
    settings = GatysSettings()
    target = style_target(painting, vgg, settings.style_layers)
    result = stylize_image_gatys(to_tensor(photo), target, settings, vgg=vgg,
                                 iterations=iterations)
    pixels = (result[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    cache.mkdir(parents=True, exist_ok=True)
    np.save(cached, pixels)
    return pixels


def score(args: argparse.Namespace) -> None:
    photos = photos_in(args.photos)
    meter = PerceptualMeter(args.painting, "cpu", METER_SIZE)
    vgg = load_vgg19() if args.gatys else None
    specs = list(args.specs) + (["gatys"] if args.gatys else [])
    results: dict[str, dict[str, dict[str, float]]] = {}
    for spec in specs:
        for name, photo in photos.items():
            if spec == "gatys" and name not in args.gatys_photos:
                continue
            started = time.perf_counter()
            if spec == "gatys":
                # Minutes a photo on a CPU at full size: run at the meter's size instead.
                photo = resize_image(photo, fit_long_side(*photo.shape[:2], METER_SIZE))
                out = gatys(args.painting, photo, args.gatys, args.cache,
                            f"{args.painting}_{name}_{METER_SIZE}", vgg)
            else:
                out = stylize(spec, photo, args.style_scale)
            style, content = meter.measure(photo, out)
            results.setdefault(spec, {})[name] = {
                "style": style, "content": content, "sharpness": sharpness(out),
                "seconds": time.perf_counter() - started}
            print(f"{spec} {name}: style {style:.3f} content {content:.3f} "
                  f"sharpness {sharpness(out):.2f}", flush=True)
    print(table(results, {n: sharpness(p) for n, p in photos.items()}))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def table(results: dict[str, dict[str, dict[str, float]]], photo_sharpness: dict) -> str:
    lines = ["| spec | photos | style | content | sharpness |", "|---|---:|---:|---:|---:|"]
    for spec, per_photo in results.items():
        def mean(key: str, values=per_photo) -> float:
            return float(np.mean([v[key] for v in values.values()]))
        lines.append(f"| {spec} | {len(per_photo)} | {mean('style'):.3f} | "
                     f"{mean('content'):.3f} | {mean('sharpness'):.2f} |")
    lines.append(f"| photo | {len(photo_sharpness)} | | | "
                 f"{float(np.mean(list(photo_sharpness.values()))):.2f} |")
    return "\n".join(lines)


def sheet(args: argparse.Namespace) -> None:
    """One row per photo (and per video frame): the original, then each style at its
    default settings, as `vidstyle image` would make it; labelled tiles."""
    rows = list(photos_in(args.photos).items())
    for clip in args.clips:
        path, _, index = clip.partition("@")
        rows.append((f"{Path(path).stem} #{index}", frame_at(Path(path), int(index))))
    tiles = []
    for name, photo in rows:
        outputs = [photo] + [stylize(spec, photo, None) for spec in args.specs]
        labels = [name] + [Path(spec).stem if Path(spec).suffix else spec for spec in args.specs]
        tiles += [labelled(fit_within(pixels, args.tile), label)
                  for pixels, label in zip(outputs, labels, strict=True)]
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, args.tile - t.shape[1]), (0, 0)),
                    constant_values=255) for t in tiles]
    write_image(args.output, grid(tiles, columns=len(args.specs) + 1))
    print(f"{args.output}: {len(rows)} rows")


def frame_at(path: Path, wanted: int) -> np.ndarray:
    for index, frame in enumerate(read_frames(path)):
        if index == wanted:
            return frame
    raise SystemExit(f"{path}: fewer than {wanted + 1} frames")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("run")
    fit.add_argument("painting")
    fit.add_argument("output", type=Path)
    for knob, kind in (("steps", int), ("size", int), ("style-size", int),
                       ("content-weight", float), ("stability-weight", float), ("lr", float),
                       ("threads", int), ("darken", float)):
        fit.add_argument(f"--{knob}", type=kind)
    scorer = commands.add_parser("score")
    scorer.add_argument("painting", help="a named painting style (its shipped Gram targets)")
    scorer.add_argument("photos", type=Path)
    scorer.add_argument("specs", nargs="+")
    scorer.add_argument("--gatys", type=int, default=0, help="L-BFGS iterations (0: none)")
    scorer.add_argument("--gatys-photos", nargs="*", default=["castle", "storm"])
    scorer.add_argument("--cache", type=Path, default=Path("out/gatys-cache"))
    scorer.add_argument("--style-scale", type=float)
    scorer.add_argument("--json", type=Path)
    sheets = commands.add_parser("sheet")
    sheets.add_argument("photos", type=Path)
    sheets.add_argument("output", type=Path)
    sheets.add_argument("specs", nargs="+")
    sheets.add_argument("--clips", nargs="*", default=[], help="CLIP@N: frame N of a clip")
    sheets.add_argument("--tile", type=int, default=150)
    args = parser.parse_args(argv)
    torch.set_grad_enabled(args.command == "run")
    {"run": run, "score": score, "sheet": sheet}[args.command](args)


if __name__ == "__main__":
    main()
