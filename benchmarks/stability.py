"""How steady a style network is by itself, and how far it moved from the network it was
fine-tuned from, on photos it never saw (`vidstyle stabilize`, docs/temporal.md).

    python -m benchmarks.stability --photos HELDOUT --networks multistyle26,stable.safetensors \\
        --presets 19,7,0
    python -m benchmarks.stability --photos HELDOUT --networks wreck,steady_wreck.safetensors

A network is a catalogue name (a 26-style network, or a built-in style such as ``wreck``,
whose Johnson network is meant) or a file of either kind; Johnson networks have one style,
so their rows have no preset.

Per photo (long side `--side`) and preset, with one fixed random motion and noise per
photo (the same for every network, `vidstyle.train.stability`'s limits):
* motion error: mean squared difference between the output of the moved, noisy photo and
  the moved output of the noisy photo, away from the border (what the filter's warp of the
  previous output meets);
* L1 and Gram error (relative, VGG-19 relu1_1..relu5_1) of the clean photo's output
  against the first network's: how much of its look a candidate kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from vidstyle.files import IMAGE_SUFFIXES, read_image
from vidstyle.images import to_tensor
from vidstyle.losses import gram_matrix, style_loss
from vidstyle.networks.conditional import MultiStyleNet, one_hot_style
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.train.stability import (
    StabilitySettings,
    add_noise,
    candidate_for,
    move,
    random_motion,
)

GRAM_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
MARGIN = 8


def read_photo(path: Path, side: int) -> torch.Tensor:
    pixels = read_image(path)
    height, width = pixels.shape[:2]
    scale = side / max(height, width)
    shape = (max(4, int(width * scale) // 4 * 4), max(4, int(height * scale) // 4 * 4))
    return to_tensor(cv2.resize(pixels, shape, interpolation=cv2.INTER_AREA)[None])


class OneStyle(torch.nn.Module):
    """A Johnson network (one style) behind the 26-style network's preset call, so both
    families go through the same measures."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def set_style_weights(self, weights: torch.Tensor) -> OneStyle:
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)


def network_named(name: str) -> MultiStyleNet | OneStyle:
    """A shipped network by catalogue name or built-in style, or a file of either family
    (what `vidstyle stabilize` takes as NETWORK), in eval mode."""
    candidate = candidate_for(Path(name) if name.endswith(".safetensors") else name)
    network = candidate.teacher.eval()
    return network if candidate.family == "conditional" else OneStyle(network)


def labels(names: list[str]) -> list[str]:
    """Short names for the table: file stems, unless two would read the same (``wreck``
    and ``wreck.safetensors``), then the arguments as given."""
    stems = [Path(n).stem for n in names]
    return stems if len(set(stems)) == len(stems) else list(names)


def motion_error(network: MultiStyleNet, photo: torch.Tensor, seed: int) -> float:
    settings = StabilitySettings()
    size = photo.shape[-1]
    motion = random_motion(1, size, settings, torch.Generator().manual_seed(seed))
    # Non-square photos: `random_motion` scales shifts by the width; close enough here.
    inner = torch.zeros_like(photo[:, :1])
    inner[..., MARGIN:-MARGIN, MARGIN:-MARGIN] = 1
    mask = (move(inner, motion) > 0.999).float() * inner
    first = add_noise(photo, settings.max_noise, torch.Generator().manual_seed(seed + 1))
    second = add_noise(move(photo, motion), settings.max_noise,
                       torch.Generator().manual_seed(seed + 2))
    squared = (network(second) - move(network(first), motion)).pow(2) * mask
    return float(squared.sum() / (3 * mask.sum()))


def measure(networks: dict[str, MultiStyleNet], photos: list[torch.Tensor],
            presets: list[int], vgg=None) -> list[dict]:
    """One row per preset and network: means over the photos."""
    rows = []
    reference_name = next(iter(networks))
    with torch.no_grad():
        for preset in presets:
            for network in networks.values():
                network.set_style_weights(one_hot_style(preset))
            per_network: dict[str, list[tuple[float, float, float]]] = {n: [] for n in networks}
            for index, photo in enumerate(photos):
                reference = networks[reference_name](photo)
                wanted = ({k: gram_matrix(v) for k, v in
                           vgg.features(reference, list(GRAM_LAYERS)).items()} if vgg else None)
                for name, network in networks.items():
                    output = network(photo)
                    gram = float("nan")
                    if vgg is not None:
                        grams = {k: gram_matrix(v) for k, v in
                                 vgg.features(output, list(GRAM_LAYERS)).items()}
                        gram = float(style_loss(grams, wanted))
                    per_network[name].append((motion_error(network, photo, 10 * index),
                                              float((output - reference).abs().mean()),
                                              gram))
            for name, values in per_network.items():
                mean = np.mean(np.array(values), axis=0)
                rows.append({"preset": preset, "network": name, "motion": float(mean[0]),
                             "l1": float(mean[1]), "gram": float(mean[2])})
    return rows


def contact_sheet(networks: dict[str, MultiStyleNet], photos: list[torch.Tensor],
                  presets: list[int], out: Path) -> None:
    """One row per photo and preset: the photo, then each network's output, for the eye."""
    rows = []
    with torch.no_grad():
        for photo in photos:
            for preset in presets:
                cells = [photo]
                for network in networks.values():
                    cells.append(network.set_style_weights(one_hot_style(preset))(photo))
                row = torch.cat(cells, dim=3)[0].permute(1, 2, 0).numpy()
                rows.append((row * 255 + 0.5).clip(0, 255).astype(np.uint8))
    width = rows[0].shape[1]  # photos of other shapes: scaled to the first row's width
    rows = [r if r.shape[1] == width else
            cv2.resize(r, (width, round(r.shape[0] * width / r.shape[1])),
                       interpolation=cv2.INTER_AREA) for r in rows]
    pixels = np.concatenate(rows, axis=0)
    cv2.imwrite(str(out), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, help="folder of held-out photos")
    parser.add_argument("--networks", default="multistyle26",
                        help="comma-separated catalogue names or .safetensors files; the "
                             "first is the reference")
    parser.add_argument("--presets", default="19,7,0")
    parser.add_argument("--side", type=int, default=320)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-vgg", dest="vgg", action="store_false")
    parser.add_argument("--sheet", help="also write a contact sheet (JPEG) here")
    parser.add_argument("--sheet-photos", type=int, default=2,
                        help="how many of the photos the sheet shows")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    paths = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    photos = [read_photo(p, args.side) for p in paths]
    names = args.networks.split(",")
    networks = {label: network_named(n) for label, n in zip(labels(names), names, strict=True)}
    single = all(isinstance(n, OneStyle) for n in networks.values())
    if not single and any(isinstance(n, OneStyle) for n in networks.values()):
        parser.error("--networks: compare 26-style networks or Johnson networks, not both")
    presets = [0] if single else [int(p) for p in args.presets.split(",")]
    if args.sheet:
        contact_sheet(networks, photos[:args.sheet_photos], presets, Path(args.sheet))
    rows = measure(networks, photos, presets, load_vgg19() if args.vgg else None)
    reference = {r["preset"]: r["motion"] for r in rows if r["network"] == next(iter(networks))}
    print(f"{len(photos)} photos at {args.side} px")
    print("| preset | network | motion error | vs reference | L1 to reference | Gram error |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {'-' if single else r['preset']} | {r['network']} | {r['motion']:.5f} | "
              f"{r['motion'] / reference[r['preset']]:.2f}x | {r['l1']:.4f} | {r['gram']:.3f} |")
    print("command: python -m benchmarks.stability " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
