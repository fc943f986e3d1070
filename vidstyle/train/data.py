"""Training data: random square crops of the photos and video frames in a folder, and
consecutive frame pairs (with their optical flow) for the temporal loss.

Video frames come through `vidstyle.media.frames`; this module never opens a container.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from vidstyle.engines.scale import TRAINING_SCENE_FACTOR
from vidstyle.errors import InputError
from vidstyle.files import IMAGE_SUFFIXES, VIDEO_SUFFIXES, read_image
from vidstyle.images import to_tensor
from vidstyle.media.frames import count_frames, video_frames

# Photos are scaled so their short side is this many times the crop size before a crop is
# cut: the crop then shows most of the scene, as Johnson's 256 px COCO resizes did. The
# engine's --style-scale reproduces the stroke scale from the same factor.
RESIZE_MARGIN = TRAINING_SCENE_FACTOR
# Crops flatter than this (standard deviation, 0-255 grey levels) are drawn again: a black
# fade-out frame teaches nothing, and a constant input gave NaN gradients in the first
# instance norm (measured: training diverged at step 30 on a black frame of a clip).
MIN_CROP_STD = 4.0
# A folder of this name inside the training data is never read: it holds the held-out
# pictures quality is measured on (tools/build_training_set.py writes them there, so
# `--data` can point at the whole set without training on them).
HELD_OUT_DIR = "heldout"


@dataclass
class FramePair:
    """Two consecutive video frames (crops) and the flow current -> previous with its mask."""

    previous: np.ndarray
    current: np.ndarray
    flow_back: np.ndarray
    mask: np.ndarray


class TrainingData:
    """Random square crops of the photos and video frames in a folder (searched recursively).

    Photos are read from disk when drawn (a few thousand would not fit in memory at full
    size); `video_frames` frames of each video are decoded once with PyAV and kept, and
    with `pairs` consecutive frame pairs are kept too, flow precomputed.
    """

    def __init__(self, folder: str | Path, size: int, *, video_frames: int = 48,
                 pairs: bool = False, seed: int = 0) -> None:
        self.folder = Path(folder)
        self.size = size
        self.rng = random.Random(seed)
        self.photos, videos = scan_folder(self.folder)
        self.frames: list[np.ndarray] = []
        self.pairs: list[FramePair] = []
        for video in videos:
            frames, pairs = read_video_samples(video, size, video_frames, pairs, self.rng)
            self.frames += frames
            self.pairs += pairs
        if not self.photos and not self.frames:
            raise InputError(self.folder, "holds no readable images or videos to train on")
        if pairs and not self.pairs:
            raise InputError(self.folder, "the temporal loss needs videos, and none were found")

    def __len__(self) -> int:
        return len(self.photos) + len(self.frames)

    def reseed(self, seed: int) -> None:
        self.rng.seed(seed)

    def position(self) -> list:
        """Where the crop sequence stands, JSON-ready: `restore` continues from here, so a
        resumed run draws exactly the crops the uninterrupted run would have drawn."""
        version, state, gauss = self.rng.getstate()
        return [version, list(state), gauss]

    def restore(self, position: list) -> None:
        version, state, gauss = position
        self.rng.setstate((version, tuple(state), gauss))

    def batch(self, count: int) -> torch.Tensor:
        """``count x 3 x size x size`` float RGB in [0, 1]."""
        return to_tensor(np.stack([self.textured_crop() for _ in range(count)]))

    def textured_crop(self, attempts: int = 20) -> np.ndarray:
        """A random crop of a random picture, skipping (nearly) flat ones."""
        for _ in range(attempts):
            crop = self.random_crop(self.draw())
            if is_textured(crop):
                return crop
        raise InputError(self.folder, "holds almost only flat (single-colour) pictures")

    def draw(self) -> np.ndarray:
        index = self.rng.randrange(len(self))
        if index < len(self.frames):
            return self.frames[index]
        path = self.photos[index - len(self.frames)]
        return fit_short_side(read_image(path), self.size)

    def random_crop(self, pixels: np.ndarray) -> np.ndarray:
        crop = crop_at(pixels, self.size, self.rng)
        return crop[:, ::-1] if self.rng.random() < 0.5 else crop

    def pair(self) -> FramePair:
        return self.pairs[self.rng.randrange(len(self.pairs))]


def scan_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    if folder.is_file():
        files = [folder]
    elif folder.is_dir():
        files = sorted(p for p in folder.rglob("*")
                       if p.is_file() and HELD_OUT_DIR not in p.relative_to(folder).parts)
    else:
        raise InputError(folder, "training data folder not found")
    photos = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    return photos, videos


def is_textured(pixels: np.ndarray) -> bool:
    """False for a (nearly) single-colour picture: every channel almost constant."""
    return float(pixels.reshape(-1, 3).std(axis=0).max()) >= MIN_CROP_STD


def fit_short_side(pixels: np.ndarray, size: int) -> np.ndarray:
    """Scale so the short side is `RESIZE_MARGIN` x `size` (area filter when shrinking)."""
    height, width = pixels.shape[:2]
    scale = size * RESIZE_MARGIN / min(height, width)
    shape = (max(size, round(width * scale)), max(size, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(pixels, shape, interpolation=interpolation)


def crop_at(pixels: np.ndarray, size: int, rng: random.Random) -> np.ndarray:
    height, width = pixels.shape[:2]
    top, left = rng.randint(0, height - size), rng.randint(0, width - size)
    return pixels[top:top + size, left:left + size]


def read_video_samples(
    path: Path, size: int, count: int, with_pairs: bool, rng: random.Random
) -> tuple[list[np.ndarray], list[FramePair]]:
    """`count` frames spread over the video (scaled for cropping), and, with `with_pairs`,
    the pairs (that frame's predecessor, that frame) cropped alike, with flow and mask."""
    from vidstyle.temporal.flow import FlowEstimator

    total = count_frames(path)
    if total == 0:
        return [], []
    wanted = set(np.linspace(1, total - 1, num=min(count, total), dtype=int).tolist())
    estimator = FlowEstimator() if with_pairs else None
    frames: list[np.ndarray] = []
    pairs: list[FramePair] = []
    previous = None
    for index, frame in enumerate(video_frames(path)):
        scaled = fit_short_side(frame, size)
        if index in wanted and is_textured(scaled):
            frames.append(scaled)
            if estimator is not None and previous is not None:
                pairs.append(crop_pair(previous, scaled, size, rng, estimator))
        previous = scaled
    return frames, pairs


def crop_pair(previous: np.ndarray, current: np.ndarray, size: int, rng: random.Random,
              estimator) -> FramePair:
    from vidstyle.temporal.flow import flow_with_confidence

    height, width = current.shape[:2]
    top, left = rng.randint(0, height - size), rng.randint(0, width - size)
    window = (slice(top, top + size), slice(left, left + size))
    a, b = np.ascontiguousarray(previous[window]), np.ascontiguousarray(current[window])
    # The hard mask of the temporal loss (Ruder et al. 2016), as the metric uses it.
    estimate = flow_with_confidence(a, b, estimator, alpha=0.0)
    return FramePair(a, b, estimate.flow, estimate.reliable)

