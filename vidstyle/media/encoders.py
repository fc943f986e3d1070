"""What this machine's FFmpeg (as PyAV loaded it) offers: its release, its libraries'
versions, and the video encoders that can actually be opened here."""

from __future__ import annotations

import contextlib
import fractions

import av

from vidstyle.media.probe import error_reason

# Encoders `vidstyle apply --codec` is documented with. Software ones work wherever FFmpeg
# was built with them; hardware ones are compiled into many FFmpeg builds (PyAV's wheels
# included) yet need a device and its driver at run time.
SOFTWARE_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1", "prores_ks")
HARDWARE_ENCODERS = ("h264_nvenc", "hevc_nvenc", "av1_nvenc", "h264_qsv", "hevc_qsv",
                     "h264_vaapi", "h264_videotoolbox", "hevc_videotoolbox", "h264_amf")
# NVENC refuses frames below about 145 x 49 pixels; a probe at this size opens anywhere
# the encoder works.
PROBE_SIZE = 256


def pyav_version() -> str:
    return av.__version__


def ffmpeg_release() -> str:
    """The FFmpeg release PyAV was built against, e.g. "8.1.2"."""
    return str(getattr(av, "ffmpeg_version_info", "unknown"))


def library_versions() -> dict[str, str]:
    """Each FFmpeg library's own version, e.g. {"libavformat": "62.12.102", ...}."""
    return {name: ".".join(map(str, version)) for name, version in av.library_versions.items()}


def encoder_opens(name: str) -> bool:
    """Whether encoder `name` exists and opens here (so a hardware one has its device)."""
    if name not in av.codecs_available:
        return False
    try:
        context = av.CodecContext.create(name, "w")
        formats = context.codec.video_formats or ()
        context.width = context.height = PROBE_SIZE
        context.pix_fmt = formats[0].name if formats else "yuv420p"
        context.time_base = fractions.Fraction(1, 25)
        context.open()
    except (av.FFmpegError, OSError, ValueError):
        return False
    return True


def usable_encoders() -> list[str]:
    """The documented encoders that work on this machine: software ones built in, and
    hardware ones whose device answers (opening software encoders would make x265 and
    SVT-AV1 print their banners, and tells nothing more)."""
    software = [name for name in SOFTWARE_ENCODERS if name in av.codecs_available]
    return software + [name for name in HARDWARE_ENCODERS if encoder_opens(name)]


def open_refusal(ctx: av.CodecContext) -> str | None:
    """Open a scratch codec context and close it: None if it opens, else why not."""
    try:
        ctx.open()
    except (av.error.FFmpegError, ValueError) as exc:
        return error_reason(exc)
    finally:
        with contextlib.suppress(Exception):  # a scratch context: nothing to keep
            ctx.close()
    return None
