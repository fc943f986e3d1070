"""The codec policy: `--codec auto` keeps what plays the input (vidstyle.media.policy)."""

from __future__ import annotations

import io

import av
import pytest

from vidstyle.media.policy import bit_depth, choose_video

# -- the policy -------------------------------------------------------------------------

# PyAV 18's wheels build libvpx 8-bit only: VP9 keeps 10 bits where libvpx can write them.
VP9_BITS = 10 if "yuv420p10le" in {f.name for f in av.Codec("libvpx-vp9", "w").video_formats} \
    else 8


@pytest.mark.parametrize(("fmt", "codec", "bits", "expect"), [
    ("mp4", "hevc", 10, ("libx265", 10, "hvc1")),
    ("mov", "hevc", 8, ("libx265", 8, "hvc1")),
    ("matroska", "hevc", 10, ("libx265", 10, None)),
    ("webm", "hevc", 10, ("libvpx-vp9", VP9_BITS, None)),
    ("avi", "hevc", 10, ("mpeg4", 8, None)),
    ("mp4", "h264", 10, ("libx264", 8, None)),  # no H.264 High 10 from auto
    ("mp4", "h264", 8, ("libx264", 8, None)),
    ("webm", "vp9", 10, ("libvpx-vp9", VP9_BITS, None)),
    ("mp4", "av1", 10, ("libsvtav1", 10, None)),
    ("mov", "prores", 10, ("libx264", 8, None)),
])
def test_auto_codec_follows_what_plays_the_input(fmt, codec, bits, expect):
    choice = choose_video(fmt, _supported(fmt), wanted="auto", input_codec=codec,
                          input_bits=bits, keep_hdr=False)
    assert (choice.encoder.name, choice.bits, choice.sample_entry) == expect


def test_keeping_hdr_in_webm_takes_a_10_bit_codec_this_build_writes():
    choice = choose_video("webm", _supported("webm"), wanted="auto", input_codec="hevc",
                          input_bits=10, keep_hdr=True)
    assert choice.bits == 10
    assert choice.encoder.name == ("libvpx-vp9" if VP9_BITS == 10 else "libsvtav1")


def test_keeping_hdr_takes_a_10_bit_codec_players_decode():
    choice = choose_video("mp4", _supported("mp4"), wanted="auto", input_codec="h264",
                          input_bits=8, keep_hdr=True)
    assert (choice.encoder.name, choice.bits) == ("libx265", 10)
    named = choose_video("mp4", _supported("mp4"), wanted="libx264", input_codec="hevc",
                         input_bits=10, keep_hdr=False)
    assert (named.encoder.name, named.bits) == ("libx264", 8)
    assert bit_depth("yuv420p10le") == 10 and bit_depth("yuv420p") == 8


def _supported(fmt: str) -> frozenset[str]:
    with av.open(io.BytesIO(), "w", format=fmt) as container:
        return frozenset(container.supported_codecs)
