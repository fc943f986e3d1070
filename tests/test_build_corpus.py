"""tools/build_corpus.py: the noise estimate, and a noisy clip whose noise survives."""

import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import build_corpus  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_noise_level_reads_the_noise_and_ignores_smooth_shading():
    rng = np.random.default_rng(0)
    ramp = np.tile(np.linspace(40, 200, 320, dtype=np.float32), (180, 1))
    rgb = np.repeat(ramp[..., None], 3, axis=2)
    assert build_corpus.noise_level(rgb.astype(np.uint8)) < 0.6  # rounding to uint8 only
    noisy = (rgb + rng.normal(0, 5, rgb.shape[:2])[..., None]).clip(0, 255).astype(np.uint8)
    assert build_corpus.noise_level(noisy) == pytest.approx(5, rel=0.15)


def encode(tmp_path: Path, name: str, params: dict) -> Path:
    photo = build_corpus.read_rgb(SAMPLES / "photos" / "fruits.jpg")
    width, height = params["size"]
    target = tmp_path / f"{name}.mp4"
    writer = build_corpus.ClipWriter(target, width, height, build_corpus.SYNTH_FPS,
                                     params["crf"], params.get("tune"))
    for image, _ in itertools.islice(build_corpus.camera_move(photo, params, 0), 6):
        writer.write(image)
    writer.close()
    return target


def test_the_grain_clip_keeps_its_noise_where_lowlight_loses_it(tmp_path):
    params = {name: p for _, clip, p in build_corpus.SYNTH_CLIPS
              for name in [clip.name]}
    grain, lowlight = params["grain"], params["lowlight"]
    size = {"size": (320, 180)}
    clean = build_corpus.clip_noise(encode(tmp_path, "clean", grain | size | {"noise": 0}))
    kept = build_corpus.clip_noise(encode(tmp_path, "grain", grain | size))
    # The same frames and noise, encoded the way lowlight is.
    lost = build_corpus.clip_noise(encode(tmp_path, "lost", grain | size | {
        "crf": lowlight["crf"], "tune": lowlight.get("tune")}))
    assert kept - clean > 2 * (lost - clean) > 0
    assert kept - clean > 1.5
    assert [c.name for _, c, _ in build_corpus.SYNTH_CLIPS if c.held_out] == ["meadow", "grain"]


def test_a_variant_changes_only_the_settings_it_names():
    assert build_corpus.parse_variant("lowlight:gain=1,crf=14") == (
        "lowlight", {"gain": 1.0, "crf": 14})
    for bad in ["lowlight", "lowlight:gian=1", "vtest:gain=1", "lowlight:gain="]:
        with pytest.raises(ValueError):
            build_corpus.parse_variant(bad)
