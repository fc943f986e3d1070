"""`vidstyle.media.frames`: pixels out of a clip for training and tools."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from vidstyle.errors import InputError
from vidstyle.media.frames import count_frames, video_frames

SAMPLES = Path(__file__).parent.parent / "samples"


def test_frames_are_rgb_at_the_clip_size():
    first = list(islice(video_frames(SAMPLES / "cup.mp4"), 3))
    assert len(first) == 3
    assert all(frame.shape == (480, 640, 3) and frame.dtype.name == "uint8" for frame in first)
    assert (first[0] != first[2]).any()  # consecutive frames, not one frame repeated


def test_count_matches_what_is_yielded():
    clip = SAMPLES / "bigbuckbunny.mp4"
    assert count_frames(clip) == sum(1 for _ in video_frames(clip)) > 100


def test_a_file_that_is_not_a_video_is_a_user_error(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(InputError, match="cannot decode"):
        list(video_frames(bad))
