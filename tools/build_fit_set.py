"""Build the fit set that `vidstyle train` uses by default (vidstyle/train/fitset/).

Fitting a painting onto the 26-style network (`vidstyle.train.fit`) trains about a
thousand numbers, so a few dozen varied pictures are enough, and the package can carry
them: the user needs no training set. They are chosen from the training set that
`tools/build_training_set.py` builds, by licence and by content:

* OpenCV's sample photos (Apache-2.0, like vidstyle): objects, animals, people, a
  building, texture; two crops of each (the whole picture and a closer window);
* frames of two clips: Big Buck Bunny (CC-BY 3.0, Blender Foundation; credited in the
  folder's SOURCES.md) and samples/cup.mp4 (OpenCV, Apache-2.0): real video, with its
  compression and motion blur.

Kept out: every held-out picture quality is measured on (the training set's `heldout/`,
which it never crops, and the extra held-out photos `EXTRA_HELD_OUT` below), the
validation photos the fit's settings were tuned on (`VALIDATION`), and pictures under
GPL or unclear licences (the desktop wallpapers).

    python tools/build_training_set.py --out TRAIN
    python tools/build_fit_set.py TRAIN
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "vidstyle" / "train" / "fitset"
# OpenCV sample photos (file stems in the training set's photos/ after the index prefix).
PHOTOS = (
    "aloeL", "apple", "baboon", "board", "building", "butterfly", "chicky_512", "fruits",
    "stuff", "orange", "rubberwhale1", "squirrel_cls", "licenseplate_motion", "left",
    "graf1", "smarties",
)
# The crops of each photo kept: 0 is the whole picture, 1 a window of half its short side.
CROPS = (0, 1)
CLIPS = ("bigbuckbunny", "cup")
FRAMES_PER_CLIP = 8
# Tuning photos (docs/training.md, "Choosing the fit's settings"): OpenCV's home (a city
# building), messi5 (people) and rgbd-color (an office), MATE's Dune and KDE's BytheWater
# (landscapes); never fitted on, never shipped.
VALIDATION = ("home", "messi5", "rgbd-color", "Dune", "BytheWater")
# Held out on top of the training set's own: an indoor table, an indoor garage and a night
# scene (scikit-image's coffee, motorcycle_left and rocket), for the quality table.
EXTRA_HELD_OUT = ("coffee", "motorcycle_left", "rocket")
SIDE = 320
JPEG_QUALITY = 88


def photo_files(photos: Path) -> list[Path]:
    chosen = []
    for stem in PHOTOS:
        for crop in CROPS:
            matches = sorted(photos.glob(f"[0-9][0-9][0-9][0-9]_{stem}_{crop}.jpg"))
            if not matches:
                sys.exit(f"{photos}: no crop {crop} of {stem!r}; build the training set first")
            chosen.append(matches[0])
    return chosen


def frame_files(frames: Path) -> list[Path]:
    chosen = []
    for clip in CLIPS:
        whole = sorted(frames.glob(f"{clip}_*_0.jpg"))
        if len(whole) < FRAMES_PER_CLIP:
            sys.exit(f"{frames}: too few frames of {clip!r}; build the training set first")
        step = len(whole) / FRAMES_PER_CLIP
        chosen += [whole[int(i * step)] for i in range(FRAMES_PER_CLIP)]
    return chosen


def is_kept_out(path: Path) -> bool:
    return any(name in path.name for name in (*VALIDATION, *EXTRA_HELD_OUT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path, help="the folder build_training_set.py wrote")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    files = photo_files(args.train / "photos") + frame_files(args.train / "frames")
    assert not any(is_kept_out(f) for f in files), "a kept-out picture was chosen"
    if args.out.exists():
        for old in args.out.glob("*.jpg"):
            old.unlink()
    args.out.mkdir(parents=True, exist_ok=True)
    for source in files:
        image = cv2.imread(str(source), cv2.IMREAD_COLOR)
        scale = SIDE / min(image.shape[:2])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        name = source.name.split("_", 1)[1] if source.name[:4].isdigit() else source.name
        cv2.imwrite(str(args.out / name), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    shutil.copy(REPO / "tools" / "fitset_SOURCES.md", args.out / "SOURCES.md")
    total = sum(f.stat().st_size for f in args.out.glob("*.jpg"))
    print(f"{len(files)} pictures, {total / 1e6:.2f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
