"""A seeded damage fuzzer: truncation at random offsets, byte flips and zeroed ranges
over real and generated clips. Whatever the damage: no traceback, no hang (each case
under a timeout), nothing left behind, the input unchanged, and either a valid output
(it decodes, frame for frame what the result says) or a one-line refusal naming the file.

About 30 cases in the fast suite; ``-m slow`` runs a few hundred, over the whole real
clips too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from helpers import SAMPLES, not_at_default, user_defaults
from mediagen import Audio, Spec, make_media

from vidstyle import Stylizer
from vidstyle.errors import VidstyleError

# Generated clips, one per container family, with the streams damage can hit.
GENERATED = {
    "mp4": Spec("mp4", frames=12, audio=(Audio("aac"),), chapters=True),
    "mkv": Spec("mkv", frames=12, audio=(Audio("libopus"),), subtitles=True, attachment=True),
    "webm": Spec("webm", "libvpx-vp9", frames=12, audio=(Audio("libopus"),)),
    "avi": Spec("avi", "mpeg4", frames=12, audio=(Audio("ac3"),)),
    "mov": Spec("mov", frames=12, audio=(Audio("pcm_s16le"),), vfr=True),
}
# Real encoders' bitstreams, cut to their first quarter second (7 frames of 640x480, the
# keyframe and what follows it) so that a case at the default settings stays fast.
REAL = {"cup": "cup.mp4", "box": "box.mp4"}
REAL_SECONDS = 0.25
KINDS = ("truncate", "flip", "zero")


@dataclass(frozen=True)
class Damage:
    clip: str
    kind: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.clip}-{self.kind}-{self.seed}"


def damaged(data: bytes, kind: str, rng: random.Random) -> bytes:
    """`data` with one kind of damage at seeded random places."""
    size = len(data)
    if kind == "truncate":
        return data[: rng.randrange(size // 20, size)]
    broken = bytearray(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 24)):
            broken[rng.randrange(size)] ^= 1 << rng.randrange(8)
    else:  # zero a range
        start = rng.randrange(size)
        end = min(start + rng.randint(16, 4096), size)
        broken[start:end] = bytes(end - start)
    return bytes(broken)


def first_seconds(src: Path, dst: Path, seconds: float) -> Path:
    """Stream-copy the first `seconds` of a real clip (its encoder's own bitstream)."""
    with av.open(str(src)) as source, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams
                   if s.type in ("video", "audio")}
        for packet in source.demux(list(source.streams)):
            if packet.dts is None or packet.stream.index not in streams:
                continue
            if float(packet.dts * packet.time_base) >= seconds:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Every clean clip by name, generated once per session."""
    folder = tmp_path_factory.mktemp("fuzz-clips")
    found = {}
    for name, spec in GENERATED.items():
        path = make_media(folder / f"{name}.{spec.container}", spec)
        found[name] = path
    for name, file in REAL.items():
        found[name] = first_seconds(SAMPLES / file, folder / f"{name}.mp4", REAL_SECONDS)
        found[f"{name}-whole"] = SAMPLES / file
    return found


# What every case runs: the defaults a user gets, nothing changed.
FUZZ_SETTINGS = user_defaults()


@pytest.fixture(scope="module")
def stylizer(default_compile) -> Stylizer:
    with Stylizer(FUZZ_SETTINGS) as stylizer:
        yield stylizer


def test_the_fuzzer_runs_every_setting_that_is_on_by_default_at_its_default(stylizer):
    assert not_at_default(stylizer.settings, user_defaults()) == []


def check_damage(tmp_path: Path, stylizer: Stylizer, clips: dict[str, Path],
                 damage: Damage) -> str:
    clean = clips[damage.clip]
    data = damaged(clean.read_bytes(), damage.kind, random.Random(damage.seed))
    src = tmp_path / f"damaged{clean.suffix}"
    src.write_bytes(data)
    dst = tmp_path / f"out{clean.suffix}"
    try:
        result = stylizer.video(src, dst)
    except VidstyleError as exc:  # a refusal: one line, naming the file
        message = str(exc)
        assert "\n" not in message and message
        assert str(src) in message or "--" in message, message
        assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]
        outcome = "refused"
    else:
        with av.open(str(dst)) as written:
            frames = sum(1 for _ in written.decode(video=0))
        assert frames == result.frames > 0
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, dst.name])
        outcome = "written"
    assert src.read_bytes() == data  # the input is never touched
    return outcome


FAST_CLIPS = ["mp4", "mkv", "webm", "avi", "mov", "cup", "box"]
FAST_DAMAGE = [Damage(clip, kind, seed)
               for seed, (clip, kind) in enumerate(
                   (c, k) for c in FAST_CLIPS for k in KINDS)][:21]
FAST_DAMAGE += [Damage(clip, "flip", 100 + i) for i, clip in enumerate(FAST_CLIPS[:5])]
FAST_DAMAGE += [Damage(clip, "truncate", 200 + i) for i, clip in enumerate(FAST_CLIPS[:4])]
# Found by the slow run: a cut that leaves a video stream with no codec (a traceback once).
FAST_DAMAGE += [Damage("box", "truncate", 1008)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("damage", FAST_DAMAGE, ids=lambda d: d.name)
def test_damage(tmp_path, stylizer, clips, damage):
    check_damage(tmp_path, stylizer, clips, damage)


SLOW_DAMAGE = [Damage(clip, kind, 1000 + seed)
               for clip in FAST_CLIPS for kind in KINDS for seed in range(12)]
SLOW_DAMAGE += [Damage(f"{clip}-whole", kind, 5000 + seed)
                for clip in REAL for kind in KINDS for seed in range(4)]


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("damage", SLOW_DAMAGE, ids=lambda d: d.name)
def test_damage_many(tmp_path, stylizer, clips, damage):
    check_damage(tmp_path, stylizer, clips, damage)


def test_damage_is_seeded():
    data = bytes(range(256)) * 64
    for kind in KINDS:
        assert damaged(data, kind, random.Random(7)) == damaged(data, kind, random.Random(7))
        assert damaged(data, kind, random.Random(7)) != data

