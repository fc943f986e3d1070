"""Style names, presets, paintings, blends, strength, colour, user styles and previews."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidstyle.errors import SettingsError, StyleError, WeightsError
from vidstyle.networks.color import rgb_to_yiq
from vidstyle.networks.johnson import JohnsonNet
from vidstyle.styles import (
    add_user_style,
    list_styles,
    load_style,
    parse_spec,
    remove_user_style,
    style_slug,
    style_vector_for_image,
)
from vidstyle.styles.catalogue import load_catalogue, shipped_vector
from vidstyle.styles.paintings import cache_dir

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PAINTING = SAMPLES / "photos" / "baboon.jpg"  # any picture can be a style


@pytest.fixture(autouse=True)
def private_user_folders(tmp_path, monkeypatch):
    """User styles and the vector cache in a temporary folder, never the real ones."""
    monkeypatch.setenv("VIDSTYLE_STYLES", str(tmp_path / "styles"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def frame() -> torch.Tensor:
    pixels = cv2.imread(str(SAMPLES / "photos" / "fruits.jpg"))[:, :, ::-1]
    pixels = cv2.resize(pixels, (96, 80), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255.0


def run(spec: str, x: torch.Tensor, **options) -> torch.Tensor:
    with torch.inference_mode():
        return load_style(spec, **options)(x).float()


# --- the catalogue ------------------------------------------------------------------------


def test_every_built_in_name_loads():
    catalogue = load_catalogue()
    assert {"scream", "wave", "wreck", "udnie", "starry_night"} <= set(catalogue.styles)
    assert sorted(catalogue.preset_names()) == list(range(26))
    for name in catalogue.styles:
        module = load_style(name)
        assert module.size_multiple == 4 and not module.training
        assert not any(p.requires_grad for p in module.parameters())


def test_every_built_in_feed_forward_style_runs_a_stabilized_network():
    """Policy: a named style or preset ships only on a network `vidstyle stabilize` made
    steady by itself (docs/flicker.md), and a fitted painting's rows were fitted with the
    stability term on and on dimmed crops. The arbitrary-style network (any painting) is
    not trained per style, so it is not one of them. A file's metadata records its fine-tune."""
    from vidstyle.styles.weights import WEIGHTS_DIR, read_safetensors

    catalogue = load_catalogue()
    checked, fitted = set(), set()
    for name, style in catalogue.styles.items():
        if style.norms is not None:
            _, metadata = read_safetensors(WEIGHTS_DIR / style.norms[0])
            terms = dict(term.rsplit(" ", 1) for term in metadata["weights"].split(", "))
            assert float(terms["stability"]) > 0 and float(terms["darken"]) > 0, name
            fitted.add(name)
            continue
        network = catalogue.networks[style.network]
        if network.family == "arbitrary":
            continue
        _, metadata = read_safetensors(WEIGHTS_DIR / network.files["network"][0])
        record = metadata.get("stabilized", "") or metadata.get("objective", "")
        assert "stabilize" in record or record.startswith("stability"), (name, style.network)
        checked.add(style.network)
    assert checked == {"multistyle26_stable"}
    assert fitted == {"scream", "wave", "wreck", "udnie", "starry_night"}


@pytest.mark.slow
def test_every_built_in_name_has_its_own_look(frame):
    outputs = {name: run(name, frame) for name in load_catalogue().styles}
    # 31 names, 31 different looks: no two names silently map to the same style.
    names = list(outputs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert (outputs[a] - outputs[b]).abs().mean() > 0.01, (a, b)


def test_preset_names_and_indices_agree(frame):
    assert torch.equal(run("golden_haze", frame), run("preset:0", frame))
    assert torch.equal(run("tile_mosaic", frame), run("preset:25", frame))


def test_list_styles_reports_attribution():
    infos = {info.name: info for info in list_styles()}
    assert infos["scream"].family == "arbitrary" and "Munch" in infos["scream"].source
    assert infos["scream"].base == "arbitrary"  # a fitted style: norm rows of that network
    assert "public domain" in infos["scream"].licence and "Apache" in infos["scream"].licence
    assert infos["scream_arbitrary"].family == "arbitrary"
    assert "Munch" in infos["scream_arbitrary"].source
    assert infos["brick_grid"].preset == 17 and infos["brick_grid"].origin == "built-in"


# --- specs, blends and slugs ------------------------------------------------------------


def test_parse_spec():
    assert parse_spec("scream") == [("scream", 1.0)]
    assert parse_spec("scream:0.6, wave:0.4") == [("scream", 0.6), ("wave", 0.4)]
    assert parse_spec("preset:3") == [("preset:3", 1.0)]
    assert parse_spec("preset:3:0.5,preset:7:0.5") == [("preset:3", 0.5), ("preset:7", 0.5)]
    with pytest.raises(StyleError, match="non-negative"):
        parse_spec("scream:-1,wave:1")


@pytest.mark.parametrize(("spec", "slug"), [
    ("scream", "scream"),
    ("scream:0.6,wave:0.4", "scream0.6-wave0.4"),
    ("preset:3", "preset3"),
    ("paintings/The Kiss (1908).jpg", "The_Kiss_1908"),
    ("preset:3:0.5,golden_haze:0.5", "preset30.5-golden_haze0.5"),
])
def test_style_slug(spec, slug):
    assert style_slug(spec) == slug


def test_blend_weights_mix_the_style_space(frame):
    # A zero weight leaves the other style exactly.
    assert torch.equal(run("scream_arbitrary:1,wave_arbitrary:0", frame),
                       run("scream_arbitrary", frame))
    assert torch.equal(run("preset:3:1,preset:7:0", frame), run("preset:3", frame))
    network = load_style("scream_arbitrary:0.6,wave_arbitrary:0.4").network
    expected = 0.6 * shipped_vector("scream") + 0.4 * shipped_vector("wave")
    wanted = network.transformer.style_rows(expected.reshape(1, -1))
    assert all(torch.allclose(network.rows()[k], wanted[k], atol=1e-5) for k in wanted)
    weights = load_style("golden_haze:1,preset:5:3").network.style_weights
    assert weights[0] == pytest.approx(0.25) and weights[5] == pytest.approx(0.75)


def test_blend_of_trained_networks_mixes_their_pictures(frame, tmp_path):
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"johnson{seed}.pth")
        torch.save(JohnsonNet().state_dict(), paths[-1])
    first, second = run(str(paths[0]), frame), run(str(paths[1]), frame)
    assert torch.allclose(run(f"{paths[0]}:0.6,{paths[1]}:0.4", frame),
                          0.6 * first + 0.4 * second, atol=1e-5)


def test_named_paintings_blend_with_any_painting_in_norm_space(frame):
    """The named paintings are fitted rows of the arbitrary network: they blend with the
    stored painting vectors and with any picture, as the weighted sum of their rows."""
    network = load_style("scream:0.5,wave_arbitrary:0.25,wave:0.25").network
    parts = [(load_style(spec).network.rows(), weight)
             for spec, weight in (("scream", 0.5), ("wave_arbitrary", 0.25), ("wave", 0.25))]
    for key, value in network.rows().items():
        assert torch.allclose(value, sum(w * rows[key] for rows, w in parts), atol=1e-5)
    assert torch.equal(run("scream:1,wave:0", frame), run("scream", frame))
    mixed = run(f"scream:0.5,{PAINTING}:0.5", frame)
    assert (mixed - run("scream", frame)).abs().mean() > 0.01
    with pytest.raises(StyleError, match="cannot blend styles of different networks"):
        load_style("scream:0.5,blue_swirl:0.5")  # the presets run another network


def test_blend_across_networks_is_refused():
    with pytest.raises(StyleError, match="cannot blend styles of different networks"):
        load_style("scream_arbitrary:0.5,golden_haze:0.5")


@pytest.mark.parametrize(("change", "message"), [
    ({"base_sha256": "0" * 64}, "fitted to another version of network 'arbitrary'"),
    ({"base": "multistyle26_stable"},
     "fitted to network 'multistyle26_stable', which is not an arbitrary-style network"),
    ({"base": "mine"}, "fitted to network 'mine'"),
])
def test_a_fitted_style_on_the_wrong_base_network_is_refused(tmp_path, change, message):
    from vidstyle.styles.fitted import read_fitted_style
    from vidstyle.styles.weights import WEIGHTS_DIR, read_safetensors, write_safetensors

    file_name = load_catalogue().styles["scream"].norms[0]
    tensors, metadata = read_safetensors(WEIGHTS_DIR / file_name)
    moved = tmp_path / "moved.safetensors"
    write_safetensors(moved, tensors, metadata | change)
    with pytest.raises(StyleError, match=message):
        load_style(str(moved))
    with pytest.raises(StyleError, match=message):
        add_user_style("moved", moved)
    write_safetensors(moved, tensors, metadata)  # the file itself is fine
    assert read_fitted_style(moved).base == "arbitrary"


# --- strength and colour -----------------------------------------------------------------


def test_strength_zero_returns_the_source_for_presets(frame):
    assert torch.allclose(run("golden_haze", frame, strength=0.0), frame, atol=1e-6)
    half = run("golden_haze", frame, strength=0.5)
    full = run("golden_haze", frame)
    assert torch.allclose(half, 0.5 * full + 0.5 * frame, atol=1e-5)


def test_strength_moves_the_arbitrary_style_toward_the_frames_own(frame):
    full, half, none = (run("scream_arbitrary", frame, strength=s) for s in (1.0, 0.5, 0.0))
    # Interpolated in style space: the result is a stylization, not a ghost of the photo.
    assert (none - frame).abs().mean() > 0.02
    assert (half - none).abs().mean() < (full - none).abs().mean()


def test_preserve_color_keeps_the_sources_chroma(frame):
    styled = run("wave", frame)
    kept = run("wave", frame, preserve_color=True)
    chroma_error = (rgb_to_yiq(kept)[:, 1:] - rgb_to_yiq(frame)[:, 1:]).abs().mean()
    styled_chroma_error = (rgb_to_yiq(styled)[:, 1:] - rgb_to_yiq(frame)[:, 1:]).abs().mean()
    assert chroma_error < 0.01 < styled_chroma_error
    luma_error = (rgb_to_yiq(kept)[:, :1] - rgb_to_yiq(styled)[:, :1]).abs().mean()
    assert luma_error < 0.01


def test_strength_out_of_range_is_a_settings_error():
    with pytest.raises(SettingsError, match="strength"):
        load_style("scream", strength=1.5)


# --- paintings as styles -----------------------------------------------------------------


def test_painting_path_is_a_style_and_its_vector_is_cached(frame):
    out = run(str(PAINTING), frame)
    assert out.shape == frame.shape
    cached = list(cache_dir().glob("*.safetensors"))
    assert len(cached) == 1
    first = style_vector_for_image(PAINTING)
    cached[0].write_bytes(b"damaged")  # a broken entry is recomputed, not trusted
    assert torch.allclose(style_vector_for_image(PAINTING), first, atol=1e-6)
    assert style_slug(str(PAINTING)) == "baboon"


def test_unreadable_style_image_and_unknown_names(tmp_path):
    fake = tmp_path / "painting.jpg"
    fake.write_bytes(b"this is not a jpeg")
    with pytest.raises(StyleError, match="painting.jpg: cannot read the style image"):
        load_style(str(fake))
    with pytest.raises(StyleError, match="style file not found"):
        load_style(str(tmp_path / "missing.png"))
    with pytest.raises(StyleError, match="did you mean 'starry_night'"):
        load_style("stary_night")
    with pytest.raises(StyleError, match="preset:0 to preset:25"):
        load_style("preset:26")


def test_shipped_weights_are_checked_against_the_catalogue(monkeypatch, tmp_path):
    from vidstyle.styles import catalogue as catalogue_module
    from vidstyle.styles import weights as weights_module

    shipped = weights_module.WEIGHTS_DIR
    for file in shipped.glob("*.safetensors"):
        (tmp_path / file.name).write_bytes(file.read_bytes())
    catalogue = catalogue_module.load_catalogue()
    network = catalogue.networks[catalogue.styles["golden_haze"].network]
    tampered = tmp_path / network.files["network"][0]
    data = bytearray(tampered.read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    monkeypatch.setattr(catalogue_module, "WEIGHTS_DIR", tmp_path)
    catalogue_module.shipped_tensors.cache_clear()
    try:
        with pytest.raises(WeightsError, match=f"{tampered.name}: checksum mismatch"):
            load_style("golden_haze")
    finally:
        catalogue_module.shipped_tensors.cache_clear()


# --- user styles -------------------------------------------------------------------------


def test_user_styles_add_list_use_remove(tmp_path, frame):
    info = add_user_style("my_baboon", PAINTING)
    assert info.family == "arbitrary"
    torch.save({**JohnsonNet().state_dict(), "in1.running_mean": torch.zeros(32)},
               tmp_path / "mosaic.pth")
    add_user_style("mosaic", tmp_path / "mosaic.pth")
    listed = {i.name: i for i in list_styles() if i.origin == "user"}
    assert listed["my_baboon"].source == "baboon.jpg" and listed["mosaic"].family == "johnson"
    assert torch.allclose(run("my_baboon", frame), run(str(PAINTING), frame), atol=1e-6)
    assert run("mosaic", frame, strength=0.5).shape == frame.shape
    with pytest.raises(StyleError, match="cannot blend"):
        load_style("my_baboon:0.5,mosaic:0.5")
    with pytest.raises(StyleError, match="exists"):
        add_user_style("mosaic", PAINTING)
    remove_user_style("mosaic")
    with pytest.raises(StyleError, match="no such user style"):
        remove_user_style("mosaic")
    assert "mosaic" not in {i.name for i in list_styles()}


def test_user_style_names_are_checked():
    with pytest.raises(StyleError, match="built-in"):
        add_user_style("scream", PAINTING)
    with pytest.raises(StyleError, match="lower-case"):
        add_user_style("../escape", PAINTING)
    with pytest.raises(StyleError, match="not a style file"):
        add_user_style("notes", SAMPLES / "LICENSES.md")


# --- the CLI ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli():
    import typer

    from vidstyle.cli import styles

    app = typer.Typer()
    styles.register(app)
    return app


def test_cli_list_add_remove(cli):
    import json

    runner = CliRunner()
    result = runner.invoke(cli, ["styles", "add", "mine", str(PAINTING)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["styles", "list", "--json"])
    names = [entry["name"] for entry in json.loads(result.output)]
    assert names[:5] == ["scream", "wave", "wreck", "udnie", "starry_night"]
    assert "mine" in names and len(names) == 5 + 5 + 26 + 1  # paintings twice, presets, mine
    assert runner.invoke(cli, ["styles", "remove", "mine"]).exit_code == 0
    failed = runner.invoke(cli, ["styles", "remove", "mine"])
    assert failed.exit_code == 1 and "no such user style" in failed.output


def test_cli_contact_sheet_and_clip_preview(cli, tmp_path):
    runner = CliRunner()
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(cli, ["styles", "preview", str(PAINTING), "-o", str(sheet),
                                 "--styles", "scream,brick_grid", "--tile", "96"])
    assert result.exit_code == 0, result.output
    pixels = cv2.imread(str(sheet))
    assert pixels.shape[1] > 3 * 96 and pixels.shape[0] > 96  # original + 2 tiles, labels
    strip = tmp_path / "strip.jpg"
    result = runner.invoke(cli, ["preview", str(SAMPLES / "cup.mp4"), "--style", "wave",
                                 "-o", str(strip), "--frames", "2", "--size", "96"])
    assert result.exit_code == 0, result.output
    pixels = cv2.imread(str(strip))
    height = pixels.shape[0]
    assert height > 2 * 50 and pixels.shape[1] > 2 * 90
    # The two frames come from different moments of the clip.
    top, bottom = pixels[: height // 2].astype(int), pixels[height // 2 :].astype(int)
    assert np.abs(top[: bottom.shape[0]] - bottom[: top.shape[0]]).mean() > 1.0
    failed = runner.invoke(cli, ["preview", str(SAMPLES / "cup.mp4"), "--style", "screm"])
    assert failed.exit_code == 1 and "did you mean 'scream'" in failed.output
