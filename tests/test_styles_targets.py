"""One road from a style spec to Gram targets: every spec with a picture behind it works
with the gatys engine (a test per kind), the ones without are refused in one line, and
the shipped Gram files are checked against the catalogue."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidstyle import stylize_image
from vidstyle.config import GatysSettings
from vidstyle.errors import SettingsError, StyleError, WeightsError
from vidstyle.files import read_image
from vidstyle.images import to_tensor
from vidstyle.losses import relative_squared_error
from vidstyle.styles import add_user_style, targets
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.targets import (
    load_painting_grams,
    load_style_target,
    save_style_target,
    style_target,
    style_target_from_image,
)
from vidstyle.styles.weights import WEIGHTS_DIR

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
LAYERS = GatysSettings().style_layers


@pytest.fixture(scope="module")
def vgg():
    return load_vgg19()


@pytest.fixture
def painting(tmp_path) -> Path:
    """A small real picture (a crop of the baboon's fur) to take a style from."""
    pixels = cv2.imread(str(SAMPLES / "photos" / "baboon.jpg"))[:96, :128]
    path = tmp_path / "fur.png"
    cv2.imwrite(str(path), pixels)
    return path


@pytest.fixture
def user_styles(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "styles"
    monkeypatch.setenv("VIDSTYLE_STYLES", str(folder))
    return folder


def same_grams(a, b, tolerance: float = 1e-6) -> bool:
    return all(relative_squared_error(a.grams[k], b.grams[k]) < tolerance for k in LAYERS)


def test_a_named_painting_style_uses_its_checksummed_gram_file(vgg):
    target = style_target("scream", vgg, LAYERS)
    assert same_grams(target, load_painting_grams("scream"))
    assert target.style_size == 512


def test_the_arbitrary_version_of_a_painting_has_the_same_target(vgg):
    assert same_grams(style_target("wave_arbitrary", vgg, LAYERS), style_target("wave", vgg,
                                                                                 LAYERS))


def test_a_picture_file_gives_the_grams_of_its_pixels(vgg, painting):
    from_file = style_target(str(painting), vgg, LAYERS, 64)
    from_tensor = style_target_from_image(to_tensor(read_image(painting)), vgg, LAYERS, 64)
    assert same_grams(from_file, from_tensor, 1e-10)
    # and a different picture gives a different target
    other = style_target(str(SAMPLES / "photos" / "fruits.jpg"), vgg, LAYERS, 64)
    assert not same_grams(from_file, other, 1e-3)


def test_a_user_style_added_from_a_picture_keeps_the_picture(vgg, painting, user_styles):
    add_user_style("fur", painting)
    from_user = style_target("fur", vgg, LAYERS, 64)
    assert same_grams(from_user, style_target(str(painting), vgg, LAYERS, 64), 1e-10)


def test_a_blend_targets_the_weighted_mean_of_grams(vgg, painting, user_styles):
    add_user_style("fur", painting)
    blend = style_target("scream:0.25,fur:0.75", vgg, LAYERS)
    scream, fur = style_target("scream", vgg, LAYERS), style_target("fur", vgg, LAYERS)
    for layer in LAYERS:
        expected = 0.25 * scream.grams[layer] + 0.75 * fur.grams[layer]
        assert torch.allclose(blend.grams[layer], expected, rtol=1e-5)


@pytest.mark.parametrize("spec", ["preset:3", "golden_haze", "scream:0.5,preset:2"])
def test_presets_have_no_painting_and_are_refused_in_one_line(vgg, spec):
    with pytest.raises(StyleError, match="no painting behind it") as caught:
        style_target(spec, vgg, LAYERS)
    assert "\n" not in str(caught.value)


def test_a_johnson_network_file_is_refused(vgg, tmp_path):
    network = tmp_path / "mosaic.pth"
    network.write_bytes(b"")
    with pytest.raises(StyleError, match="no painting behind it"):
        style_target(str(network), vgg, LAYERS)


def test_unknown_names_and_missing_files_are_named(vgg, tmp_path):
    with pytest.raises(StyleError, match="no_such_style"):
        style_target("no_such_style", vgg, LAYERS)
    with pytest.raises(StyleError, match="missing.png"):
        style_target(str(tmp_path / "missing.png"), vgg, LAYERS)


def test_a_changed_gram_file_is_refused_by_its_checksum(vgg, tmp_path, monkeypatch):
    for path in WEIGHTS_DIR.glob("gram_*.safetensors"):
        shutil.copy(path, tmp_path / path.name)
    target = tmp_path / "gram_udnie.safetensors"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01
    target.write_bytes(bytes(data))
    monkeypatch.setattr(targets, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(WeightsError, match="checksum mismatch"):
        style_target("udnie", vgg, LAYERS)
    assert style_target("wave", vgg, LAYERS)  # the untouched files still load


def test_gram_files_round_trip_within_fp16(vgg, painting, tmp_path):
    computed = style_target(str(painting), vgg, LAYERS, 64)
    save_style_target(computed, tmp_path / "g.safetensors")
    assert same_grams(load_style_target(tmp_path / "g.safetensors"), computed)


# -- end to end: --engine gatys takes every kind of spec with a picture behind it ---------


@pytest.fixture
def photo(tmp_path) -> Path:
    pixels = cv2.imread(str(SAMPLES / "photos" / "fruits.jpg"))
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), cv2.resize(pixels, (40, 32), interpolation=cv2.INTER_AREA))
    return path


def gatys_image(photo: Path, spec: str, dst: Path) -> np.ndarray:
    stylize_image(photo, dst, engine="gatys", style=spec, device="cpu",
                  gatys={"iterations": 3, "scales": 1})
    return read_image(dst)


@pytest.mark.parametrize("kind", ["catalogue", "arbitrary", "picture", "user", "blend"])
def test_engine_gatys_takes_every_spec_with_a_picture(kind, photo, painting, user_styles,
                                                       tmp_path):
    add_user_style("fur", painting)
    spec = {"catalogue": "scream", "arbitrary": "starry_night_arbitrary",
            "picture": str(painting), "user": "fur", "blend": "wreck:0.5,fur:0.5"}[kind]
    out = gatys_image(photo, spec, tmp_path / f"{kind}.png")
    original = read_image(photo)
    assert out.shape == original.shape
    # three L-BFGS steps toward the style move the picture away from the photo
    assert np.abs(out.astype(int) - original.astype(int)).mean() > 2


def test_engine_gatys_refuses_a_preset_before_any_work(photo, tmp_path):
    with pytest.raises(StyleError, match="preset"):
        stylize_image(photo, tmp_path / "o.png", engine="gatys", style="preset:1")
    assert not (tmp_path / "o.png").exists()


def test_options_the_engine_would_ignore_are_refused():
    from vidstyle.config import Settings

    with pytest.raises(SettingsError, match="temporal 'flow' applies to the fast engine"):
        Settings(engine="gatys", temporal="flow").validate()
    with pytest.raises(SettingsError, match="compile applies to the fast engine"):
        Settings(engine="fast+gatys", compile="on").validate()
    with pytest.raises(SettingsError, match="gatys.iterations applies to --engine gatys"):
        Settings().replace(gatys={"iterations": 5}).validate()
    assert Settings(engine="gatys").validate().temporal_mode == "off"
    assert Settings().validate().temporal_mode == "flow"


def test_gatys_on_the_cpu_computes_and_reports_fp32(photo):
    from vidstyle import Settings, Stylizer

    assert Stylizer(Settings(engine="gatys", device="cpu")).dtype == torch.float32
    with pytest.raises(SettingsError, match="precision bf16 does nothing"):
        Stylizer(Settings(engine="gatys", device="cpu", precision="bf16"))
