"""The media matrix: generated inputs across containers, codecs, pixel formats, sizes,
audio, subtitles, chapters, attachments, VFR, rotation, SAR and start offsets, each run
through the whole pipeline at the settings a user gets by default (the default style's
real network, the flicker filter, compile "auto", the codec chosen for the container,
the default encoder preset and quality) and checked against the invariants of issue 13:

frame count and timestamps (within one time-base tick), display size and aspect,
rotation, every stream's fate, audio durations (0.1 s), bit-identical copied packets,
language tags and disposition flags, chapters and attachments, no traceback, nothing
left behind, input unchanged, and the output marked as vidstyle's.

The settings a user can change away from their default run as extra cases
(`VARIANTS`), never instead; tests/test_defaults.py fails if a default stops being the
one the matrix runs. The fast suite runs a hand-picked set that touches every axis once;
the full grid is under ``-m slow``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import pytest
from helpers import leaf_settings, not_at_default, user_defaults
from mediagen import Audio, Spec, make_media

from vidstyle import Settings, Stylizer
from vidstyle.api import default_output_path
from vidstyle.engines.fast import should_compile
from vidstyle.files import content_hash
from vidstyle.media.encode import CHAPTER_TRACK
from vidstyle.media.probe import written_by_vidstyle

AUDIO_TOLERANCE = 0.1  # seconds: the issue's bound on every kept track's length

# What every case runs: the defaults, nothing changed.
MATRIX_SETTINGS = user_defaults()


@pytest.fixture(scope="module")
def stylizer(default_compile) -> Stylizer:
    with Stylizer(MATRIX_SETTINGS) as stylizer:
        yield stylizer


# -- what a file holds ------------------------------------------------------------------


@dataclass
class StreamFacts:
    kind: str
    codec: str
    language: str | None
    disposition: int
    packets: list[bytes]
    start: float | None
    end: float | None

    @property
    def seconds(self) -> float:
        return 0.0 if self.start is None else self.end - self.start


@dataclass
class FileFacts:
    streams: list[StreamFacts]
    times: list[float]
    tick: float
    size: tuple[int, int]
    sar: Fraction | None
    rotation: int
    chapters: list[str]
    attachments: list[str]
    marked: bool


def facts(path: Path) -> FileFacts:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        streams = []
        for stream in container.streams:
            ctx = stream.codec_context
            streams.append(StreamFacts(
                stream.type, ctx.name if ctx is not None else "none",
                stream.metadata.get("language"), int(stream.disposition), [], None, None))
        for packet in container.demux():
            s = streams[packet.stream.index]
            if packet.size == 0 or packet.pts is None:
                continue
            s.packets.append(bytes(packet))
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            s.start = start if s.start is None else min(s.start, start)
            s.end = end if s.end is None else max(s.end, end)
        container.seek(0)
        frames = list(container.decode(video))
        sar = video.codec_context.sample_aspect_ratio
        # AVI times a frame by its chunk (dts); FFmpeg's pts there is a guess.
        stamps = sorted(f.dts for f in frames) if container.format.name == "avi" else \
            [f.pts for f in frames]
        return FileFacts(
            streams=streams,
            times=[float(t * video.time_base) for t in stamps],
            tick=float(video.time_base),
            size=(frames[0].width, frames[0].height),
            sar=Fraction(sar) if sar and sar != 1 else None,
            rotation=int(round(frames[0].rotation or 0)),
            chapters=[c["metadata"].get("title", "") for c in container.chapters()],
            attachments=[s.name for s in container.streams if s.type == "attachment"],
            marked=written_by_vidstyle(path),
        )


# -- the invariants ---------------------------------------------------------------------


def check_case(tmp_path: Path, stylizer: Stylizer, spec: Spec, *, suffix: str | None = None,
               expect: dict[int, str] | None = None) -> None:
    src = make_media(tmp_path / f"in.{suffix or spec.container}", spec)
    before = content_hash(src)
    given = facts(src)
    result = stylizer.video(src)  # no traceback: any exception fails the case
    dst = default_output_path(src, stylizer.settings.style)
    assert result.dst == dst and dst.is_file()
    out = facts(dst)

    # Frames and timing: the same frames at the same times.
    assert result.frames == len(given.times) == len(out.times)
    tick = max(given.tick, out.tick) + 1e-6
    assert all(abs(a - b) <= tick for a, b in zip(given.times, out.times, strict=True)), \
        (given.times, out.times)
    # Picture: size, aspect and rotation as the input's.
    assert out.size == given.size and out.sar == given.sar and out.rotation == given.rotation

    # A whole input is whole: no "ended at", no loss unless a stream had to be dropped.
    assert result.ended_early is None, result.warnings
    fates = result.streams
    dropped = [f for f in fates if f["fate"] == "dropped" and f["why"] != CHAPTER_TRACK]
    assert result.data_lost == bool(dropped), result.warnings
    assert [f["index"] for f in fates] == list(range(len(given.streams)))
    kept = [f for f in fates if f["fate"] != "dropped"]
    # MP4's chapter list is read back as a codec-less data track: not a stream to compare.
    carried = [s for s in out.streams if not (s.kind == "data" and s.codec == "none")]
    assert [s.kind for s in carried] == [given.streams[f["index"]].kind for f in kept]
    for fate in fates:
        if fate["fate"] == "dropped" and fate["why"] != CHAPTER_TRACK:
            assert any(f"#{fate['index']}" in w for w in result.warnings), result.warnings
            assert result.data_lost
    if expect:
        assert {i: fates[i]["fate"] for i in expect} == expect, fates
    for fate, written in zip(kept, carried, strict=True):
        original = given.streams[fate["index"]]
        if original.kind == "attachment":
            continue
        # "und" is how MP4 writes "not stated".
        assert (written.language or "und") == (original.language or "und"), fate
        if original.kind == "audio":
            # Every flag the input set is kept (MP4 marks a lone track default itself).
            assert written.disposition & original.disposition == original.disposition
            assert abs(written.seconds - original.seconds) <= AUDIO_TOLERANCE, \
                (fate, original.seconds, written.seconds)
            assert abs(written.start - original.start) <= AUDIO_TOLERANCE
        if fate["fate"] == "copied" and original.kind in ("audio", "subtitle"):
            assert written.packets == original.packets  # bit-identical

    if given.chapters and dst.suffix in (".mp4", ".mkv", ".mov"):
        assert out.chapters == given.chapters
    if given.attachments and dst.suffix == ".mkv":
        assert out.attachments == given.attachments
    # Nothing left, input untouched, output marked as ours.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, dst.name])
    assert content_hash(src) == before
    assert out.marked and not given.marked


# -- the fast set: every axis at least once ---------------------------------------------

AAC, MP3, AC3 = Audio("aac"), Audio("libmp3lame"), Audio("ac3")
OPUS, PCM = Audio("libopus"), Audio("pcm_s16le")
TWO = (Audio("aac", language="eng", default=True), Audio("ac3", language="fra", forced=True))

FAST_CASES = [
    # containers, each with its usual codecs
    (Spec("mp4", audio=(AAC,)), None, None),
    (Spec("mov", audio=(PCM,)), None, None),
    (Spec("mkv", audio=(OPUS,), subtitles=True, attachment=True, chapters=True,
          video_language="fra"), None, None),
    (Spec("webm", "libvpx-vp9", audio=(OPUS,)), None, None),
    (Spec("webm", "libvpx-vp9", pix_fmt="yuv444p", size=(7, 5), subtitles=True), None, None),
    # The AVI/AC-3 case (11.3 s of audio came out 2.3 s): re-encoded, full length.
    (Spec("avi", "mpeg4", audio=(AC3,)), None, {1: "transcoded"}),
    (Spec("avi", "mjpeg", pix_fmt="yuvj420p", audio=(MP3,)), None, {1: "copied"}),
    # pixel formats
    (Spec("mkv", pix_fmt="yuv444p"), None, None),
    (Spec("mkv", pix_fmt="yuv420p10le"), None, None),
    (Spec("mkv", pix_fmt="gray"), None, None),
    (Spec("mkv", "libx264rgb", pix_fmt="rgb24"), None, None),
    (Spec("mov", "mjpeg", pix_fmt="yuvj444p"), None, None),
    # sizes down to one pixel, odd, very wide and very tall
    (Spec("mkv", pix_fmt="yuv444p", size=(1, 1), frames=3), None, None),
    (Spec("mp4", size=(2, 2), frames=3), None, None),
    (Spec("mkv", pix_fmt="yuv444p", size=(3, 5), frames=3), None, None),
    (Spec("mp4", pix_fmt="yuv444p", size=(33, 17)), None, None),
    (Spec("mp4", size=(1920, 2), frames=2), None, None),
    (Spec("mkv", size=(2, 400), frames=2), None, None),
    # audio: two tracks with flags, before/after/longer than the video
    (Spec("mp4", audio=TWO), None, {1: "copied", 2: "copied"}),
    (Spec("mkv", audio=(Audio("aac", start=-0.2),), start=0.2), None, None),
    (Spec("mp4", audio=(Audio("libmp3lame", start=0.1),)), None, None),
    (Spec("mkv", audio=(Audio("ac3", extra=0.5),)), None, None),
    # a Matroska file named .mp4: its PCM audio goes into MP4 only re-encoded, and its
    # ASS subtitles cannot (dropped, with a warning naming the stream)
    (Spec("mkv", audio=(PCM,), subtitles=True), "mp4", {1: "transcoded", 2: "dropped"}),
    (Spec("mp4", audio=(AAC,), subtitles=True, chapters=True), None, {2: "copied"}),
    # timing and geometry
    (Spec("mp4", vfr=True, frames=6, audio=(AAC,)), None, None),
    (Spec("mkv", vfr=True, frames=6), None, None),
    (Spec("mp4", rotation=90), None, None),
    (Spec("mov", rotation=270, sar=Fraction(2, 1)), None, None),
    (Spec("mkv", sar=Fraction(2, 1)), None, None),
    (Spec("mp4", start=1.0, audio=(AAC,)), None, None),
]


@pytest.mark.parametrize(("spec", "suffix", "expect"), FAST_CASES,
                         ids=[c[0].name + (f"-as-{c[1]}" if c[1] else "") for c in FAST_CASES])
def test_matrix(tmp_path, stylizer, default_compile, spec, suffix, expect):
    check_case(tmp_path, stylizer, spec, suffix=suffix, expect=expect)
    # The default compile mode took its path: each batch shape was looked up in the
    # package cache and, missing, asked of the background builder.
    assert bool(default_compile) == should_compile(MATRIX_SETTINGS.compile,
                                                   stylizer.device)


def test_the_matrix_runs_every_setting_that_is_on_by_default_at_its_default(stylizer):
    # Issue 40: the matrix ran with the flicker filter off, so the path every user takes
    # was never tested at tiny sizes. tests/test_defaults.py shows this check can fail.
    assert not_at_default(stylizer.settings, user_defaults()) == []


# -- the settings a user may change, as extra cases ------------------------------------

# Each non-default value of a setting that reaches media handling, on cases that touch
# what it changes: the filter's state across sizes and timing, the encoder per container.
VARIANTS = {
    "temporal-off": {"temporal": "off"},
    "temporal-blend": {"temporal": "blend"},
    "temporal-structure": {"temporal_structure": 5.0},
    "compile-off": {"compile": "off"},
    "codec-vp9": {"output": {"codec": "libvpx-vp9"}},
    "crf-preset": {"output": {"crf": 30, "preset": "ultrafast"}},
}
VARIANT_SPECS = [
    Spec("mp4", audio=(AAC,), chapters=True),
    Spec("mkv", pix_fmt="yuv444p", size=(3, 5), frames=3, subtitles=True),
    Spec("mp4", size=(1920, 2), frames=2),
    Spec("mkv", vfr=True, frames=6, audio=(OPUS,)),
]
VARIANT_CASES = [(name, spec) for name in VARIANTS for spec in VARIANT_SPECS]


@pytest.fixture(scope="module")
def variant_stylizers(default_compile):
    made: dict[str, Stylizer] = {}
    yield lambda name: made.setdefault(name, Stylizer(MATRIX_SETTINGS.replace(
        **VARIANTS[name])))
    for stylizer in made.values():
        stylizer.close()


def test_each_extra_case_changes_its_own_settings_and_no_other(variant_stylizers):
    defaults = leaf_settings(MATRIX_SETTINGS)

    def changed(settings: Settings) -> set[str]:
        return {key for key, value in leaf_settings(settings).items() if value != defaults[key]}

    for name, changes in VARIANTS.items():
        asked = changed(MATRIX_SETTINGS.replace(**changes))
        assert asked and changed(variant_stylizers(name).settings) == asked, name


@pytest.mark.parametrize(("variant", "spec"), VARIANT_CASES,
                         ids=[f"{n}-{s.name}" for n, s in VARIANT_CASES])
def test_matrix_off_default(tmp_path, variant_stylizers, variant, spec):
    check_case(tmp_path, variant_stylizers(variant), spec)


# -- the full grid (slow) ---------------------------------------------------------------

GRID_VIDEO = {
    "mp4": [("libx264", "yuv420p"), ("libx264", "yuv444p"), ("libx264", "yuv420p10le"),
            ("mpeg4", "yuv420p")],
    "mov": [("libx264", "yuv420p"), ("mjpeg", "yuvj420p"), ("libx264", "gray")],
    "mkv": [("libx264", "yuv420p"), ("libx264rgb", "rgb24"), ("libvpx-vp9", "yuv420p"),
            ("mjpeg", "yuvj422p"), ("libx264", "yuv444p10le")],
    "webm": [("libvpx-vp9", "yuv420p"), ("libvpx-vp9", "yuv444p")],
    "avi": [("mpeg4", "yuv420p"), ("mjpeg", "yuvj420p"), ("libx264", "yuv420p")],
}
GRID_SIZES = [(1, 1), (2, 2), (3, 5), (17, 9), (640, 2), (2, 240)]
GRID_AUDIO = {
    "mp4": [(), (AAC,), (MP3,), (AC3,), (OPUS,), TWO],
    "mov": [(), (AAC,), (PCM,), (AC3,)],
    "mkv": [(), (AAC,), (MP3,), (AC3,), (OPUS,), (PCM,), TWO],
    "webm": [(), (OPUS,)],
    "avi": [(), (MP3,), (AC3,), (PCM,), (AAC,)],
}


def _fits(codec: str, pix_fmt: str, size: tuple[int, int]) -> bool:
    subsampled = pix_fmt.endswith(("420p", "422p", "420p10le")) and codec != "libx264rgb"
    return not (subsampled and any(side % 2 for side in size))


def grid() -> list[Spec]:
    cases = []
    for container, videos in GRID_VIDEO.items():
        for (codec, pix_fmt), size, audio in itertools.product(
                videos, GRID_SIZES, GRID_AUDIO[container]):
            if _fits(codec, pix_fmt, size):
                cases.append(Spec(container, codec, pix_fmt, size, frames=3, audio=audio))
    extras = []
    for container in ("mp4", "mkv", "mov", "webm"):
        base = Spec(container, "libvpx-vp9" if container == "webm" else "libx264",
                    audio=(OPUS,) if container == "webm" else (AAC,))
        extras += [base.but(vfr=True, frames=6), base.but(start=0.5),
                   base.but(sar=Fraction(4, 3)), base.but(subtitles=True),
                   base.but(audio=(base.audio[0].__class__(base.audio[0].codec, extra=0.3),))]
        if container != "webm":
            extras += [base.but(chapters=True), base.but(rotation=90)]
    extras.append(Spec("mkv", attachment=True, subtitles=True, audio=TWO))
    return cases + extras


@pytest.mark.slow
@pytest.mark.parametrize("spec", grid(), ids=lambda s: s.name)
def test_matrix_grid(tmp_path, stylizer, spec):
    check_case(tmp_path, stylizer, spec)
