"""Which video encoder, bit depth and sample entry an output gets: one policy, so that the
output plays wherever the input played (docs/camera.md has it as a table).

`--codec auto` keeps the input's codec family where the output container takes it (HEVC
from a phone stays HEVC, VP9 stays VP9, AV1 stays AV1), else uses what the container
carries well (VP9 in WebM, MPEG-4 Part 2 in AVI, H.264 elsewhere). 10-bit stays 10-bit
only in codecs whose players decode it: HEVC Main 10, VP9 profile 2 and AV1 are decoded
by phones, browsers and hardware decoders; H.264 High 10 by almost none (no hardware
decoder, no browser), so H.264 is written 8-bit unless a 10-bit --pix-fmt asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import av

AUTO_CODEC = "auto"
# Input codec (FFmpeg's canonical name) -> the encoder that keeps its family.
FAMILY_ENCODERS = {"hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1",
                   "h264": "libx264"}
# Encoders whose 10-bit output the players of that codec decode.
TEN_BIT_PLAYABLE = ("libx265", "libvpx-vp9", "libsvtav1", "libaom-av1", "hevc_nvenc",
                    "av1_nvenc", "hevc_qsv", "hevc_videotoolbox", "prores_ks")
# The encoder each output format carries well when the input's family does not fit:
# WebM is VP9 (libvpx is in every PyAV wheel); AVI takes MPEG-4 Part 2 (what Xvid/DivX
# AVIs hold): AVI stores no presentation times, and FFmpeg's AVI reader guesses one frame
# of reorder delay for H.264 even without B-frames (measured: every frame read back one
# tick late, 0.04 s at 25 fps), while MPEG-4 Part 2 without B-frames reads back on the
# input's ticks. Formats not listed try H.264, then their own default.
FORMAT_ENCODERS = {"webm": "libvpx-vp9", "avi": "mpeg4"}
FALLBACK_ENCODER = "libx264"
# 10-bit encoders per format, for keeping HDR when the input's family is 8-bit only
# (libvpx is built 8-bit only in some FFmpeg builds, PyAV 18's wheels among them).
TEN_BIT_ENCODERS = {"webm": ("libvpx-vp9", "libsvtav1")}
TEN_BIT_FALLBACK = ("libx265", "libsvtav1")
# Apple's players open HEVC in MP4/MOV only under the `hvc1` sample entry (parameter
# sets in the sample description); FFmpeg writes `hev1` unless told.
SAMPLE_ENTRIES = {("hevc", "mp4"): "hvc1", ("hevc", "mov"): "hvc1"}
# Formats that store no presentation timestamps (AVI: one slot per frame tick) nor colour
# tags.
AVI_FORMATS = ("avi",)


@dataclass(frozen=True)
class VideoChoice:
    """The output's video encoder, bit depth, and the sample entry to write (or None)."""

    encoder: av.Codec
    bits: int
    sample_entry: str | None
    why: str


def bit_depth(pix_fmt: str) -> int:
    """Bits per sample of a pixel format (8 for yuv420p, 10 for yuv420p10le)."""
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.error.FFmpegError):
        return 8


def choose_video(format_name: str, supported: set[str] | frozenset[str], *, wanted: str,
                 input_codec: str, input_bits: int, keep_hdr: bool) -> VideoChoice | None:
    """The encoder for this output: the one named, or with "auto" the policy above.
    None when "auto" finds no encoder the container takes; a named encoder is returned
    even if the container refuses it (the caller says so)."""
    if wanted != AUTO_CODEC:
        codec = encoder(wanted)
        if codec is None:
            return None
        return _choice(codec, format_name, input_bits, keep_hdr, "named")
    if keep_hdr and format_name in AVI_FORMATS:
        return None  # AVI stores no colour tags: HDR pixels there would be misread
    # AVI: H.264 and HEVC read back mistimed there (above), so AVI keeps no family.
    family = None if format_name in AVI_FORMATS else FAMILY_ENCODERS.get(input_codec)
    candidates = [(family, f"keeps the input's {input_codec}")] if family else []
    if keep_hdr:
        candidates += [(name, "10-bit for the input's HDR")
                       for name in TEN_BIT_ENCODERS.get(format_name, TEN_BIT_FALLBACK)]
    candidates += [(FORMAT_ENCODERS.get(format_name, FALLBACK_ENCODER), "the format's own"),
                   (FALLBACK_ENCODER, "the format's own")]
    for name, why in candidates:
        codec = encoder(name)
        if codec is None or codec.canonical_name not in supported:
            continue
        if keep_hdr and not writes_playable_ten_bit(codec):
            continue  # HDR kept needs 10 bits a player decodes
        return _choice(codec, format_name, input_bits, keep_hdr, why)
    return None


def writes_playable_ten_bit(codec: av.Codec) -> bool:
    """The encoder writes 10-bit video its codec's players decode (and this build of it
    has a 10-bit pixel format)."""
    formats = codec.video_formats or ()
    return codec.name in TEN_BIT_PLAYABLE and any(bit_depth(f.name) >= 10 for f in formats)


def _choice(codec: av.Codec, format_name: str, input_bits: int, keep_hdr: bool,
            why: str) -> VideoChoice:
    ten_bit = writes_playable_ten_bit(codec) and (input_bits > 8 or keep_hdr)
    return VideoChoice(codec, 10 if ten_bit else 8,
                       sample_entry(codec.canonical_name, format_name), why)


def sample_entry(codec: str, format_name: str) -> str | None:
    """The sample entry (codec tag) a `codec` stream gets in `format_name`, or None for
    the muxer's own."""
    return SAMPLE_ENTRIES.get((codec, format_name))


def encoder(name: str) -> av.Codec | None:
    try:
        return av.Codec(name, "w")
    except (av.error.FFmpegError, ValueError):
        return None
