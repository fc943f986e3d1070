"""Video frames for consumers that want pixels only (training data, training-set tools):
every frame of a file's first video stream, RGB uint8, in decode order, no timestamps.

`Demuxer` is the road for stylizing (timestamps, copied streams, windows); this is the
short one for reading pictures out of a clip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from vidstyle.errors import InputError
from vidstyle.media.decode import frame_to_rgb


def video_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Every frame of the first video stream as ``H x W x 3`` RGB uint8 (none for a file
    without video). Raises InputError for a file PyAV cannot open or decode."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return
            for frame in container.decode(video=0):
                yield frame_to_rgb(frame)
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(path, f"cannot decode the video ({exc})") from None


def count_frames(path: str | Path) -> int:
    """How many frames `video_frames` yields (decodes the whole stream: container frame
    counts are missing or wrong often enough not to be trusted for sampling)."""
    return sum(1 for _ in video_frames(path))
