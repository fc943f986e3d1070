"""Fitting a painting as norm rows of the shipped arbitrary-style network
(`vidstyle.train.fit`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from vidstyle.cli import app
from vidstyle.errors import InputError, SettingsError
from vidstyle.losses import gram_matrix, style_loss
from vidstyle.networks.arbitrary import ArbitraryStylizer
from vidstyle.styles.fitted import read_fitted_style
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.resolve import load_style
from vidstyle.styles.targets import style_target_from_image
from vidstyle.train.data import TrainingData
from vidstyle.train.fit import (
    FIT_SET_DIR,
    STYLE_LAYERS,
    FitLoss,
    FitSettings,
    FittedRows,
    checkpoint_dir_for,
    fit_style,
    predicted_rows,
    shipped_transformer,
)

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
PAINTING = SAMPLES / "paintings" / "scream.png"
PHOTOS = SAMPLES / "photos"
# Small and quick, but every term on: 96-px crops, the painting at 128 px.
TINY = {"size": 96, "batch": 1, "style_size": 128, "device": "cpu", "precision": "fp32",
        "checkpoint_every": 2}


def tiny(**changes) -> FitSettings:
    return FitSettings(**(TINY | changes))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, object]:
    output = tmp_path_factory.mktemp("fit") / "mine.safetensors"
    result = fit_style(PAINTING, output, settings=tiny(steps=8), data=PHOTOS)
    return output, result


def style_error_of(network: torch.nn.Module, crops: torch.Tensor, vgg, target) -> float:
    with torch.no_grad():
        features = vgg.features(network(crops), STYLE_LAYERS)
    return float(style_loss({k: gram_matrix(v) for k, v in features.items()}, target.grams))


def test_the_fit_lowers_the_gram_error_to_the_painting(fitted):
    output, result = fitted
    vgg = load_vgg19()
    target = style_target_from_image(PAINTING, vgg, STYLE_LAYERS, TINY["style_size"])
    crops = TrainingData(PHOTOS, TINY["size"], seed=5).batch(2)
    transformer = shipped_transformer()
    before = ArbitraryStylizer(transformer, predicted_rows(transformer, PAINTING)).eval()
    after = load_style(str(output))
    assert style_error_of(after, crops, vgg, target) < 0.9 * style_error_of(before, crops, vgg,
                                                                           target)
    assert result.steps == 8 and len(result.losses) == 8


def test_the_output_is_the_norm_rows_only_bound_to_the_base_network(fitted):
    output, _ = fitted
    fitted_style = read_fitted_style(output)
    transformer = shipped_transformer()
    start = predicted_rows(transformer, PAINTING)
    assert set(fitted_style.rows) == set(start)
    assert {k: v.shape for k, v in fitted_style.rows.items()} == {
        k: v.shape for k, v in start.items()}
    assert fitted_style.base == "arbitrary"
    with safe_open(str(output), framework="pt") as file:
        metadata = file.metadata()
    assert metadata["base_sha256"] and metadata["steps"] == "8"
    assert output.stat().st_size < 16_000  # small data: about 700 numbers
    moved = [k for k, v in fitted_style.rows.items() if not torch.allclose(v, start[k])]
    assert len(moved) > len(start) // 2, "the fit left most norm rows where it started"


def test_only_the_norm_rows_train():
    transformer = shipped_transformer()
    network = FittedRows(transformer, predicted_rows(transformer, PAINTING))
    trainable = [p for p in network.parameters() if p.requires_grad]
    assert len(trainable) == 26  # 13 norms, a scale and a shift each
    assert sum(p.numel() for p in trainable) == 2 * (10 * 32 + 16 + 8 + 3)


def test_dimmed_crops_reach_every_term_of_the_loss():
    """`max_darken` dims the crops before anything sees them: through a network that passes
    its input on, the output's Grams shrink with the light, and the content term still
    compares the output with the crop it was given (zero)."""
    vgg = load_vgg19(device="cpu")
    target = style_target_from_image(PAINTING, vgg, STYLE_LAYERS, 128)
    crops = TrainingData(PHOTOS, 96, seed=0).batch(2)
    still = {"max_noise": 0.0, "max_shift": 0.0, "stability_weight": 0.0}

    def terms(darken: float) -> dict[str, float]:
        loss = FitLoss(vgg, target, tiny(max_darken=darken, **still))
        with torch.no_grad():
            values = loss(torch.nn.Identity(), crops, torch.Generator().manual_seed(3))
        return {name: float(value) for name, value in values.items()}

    bright, dim = terms(0.0), terms(0.9)
    assert bright["content"] == pytest.approx(0.0, abs=1e-6)
    assert dim["content"] == pytest.approx(0.0, abs=1e-6)
    assert dim["style"] != pytest.approx(bright["style"], rel=0.01)


def test_a_resumed_fit_ends_where_the_whole_run_ends(tmp_path):
    whole = tmp_path / "whole.safetensors"
    fit_style(PAINTING, whole, settings=tiny(steps=4), data=PHOTOS)
    pieces = tmp_path / "pieces.safetensors"
    fit_style(PAINTING, pieces, settings=tiny(steps=2), data=PHOTOS)
    assert checkpoint_dir_for(pieces).is_dir()
    result = fit_style(PAINTING, pieces, settings=tiny(steps=4), data=PHOTOS, resume=True)
    assert result.steps == 4 and len(result.losses) == 2
    a, b = read_fitted_style(whole).rows, read_fitted_style(pieces).rows
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_resume_without_a_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(InputError, match="cannot resume"):
        fit_style(PAINTING, tmp_path / "x.safetensors", settings=tiny(steps=2), data=PHOTOS,
                  resume=True)


@pytest.mark.parametrize("bad", [{"steps": 0}, {"size": 90}, {"size": 32}, {"style_size": 8},
                                 {"learning_rate": 0.0}, {"stability_weight": -1.0},
                                 {"max_darken": 1.0}, {"max_darken": -0.1}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(SettingsError):
        FitSettings(**bad).validate()


def test_the_shipped_fit_set_holds_varied_pictures_and_nothing_held_out():
    pictures = sorted(FIT_SET_DIR.glob("*.jpg"))
    assert len(pictures) >= 40
    assert sum(p.name.startswith(("bigbuckbunny", "cup")) for p in pictures) >= 8
    held_out = ("castle", "leuven", "aero", "storm", "evening", "summer", "chelsea",
                "astronaut", "coffee", "motorcycle", "rocket", "box", "bikes",
                "home", "messi", "rgbd", "dune", "bythewater")
    assert not [p.name for p in pictures if p.name.lower().startswith(held_out)]
    assert (FIT_SET_DIR / "SOURCES.md").is_file()


def test_cli_fits_by_default_and_the_style_loads_by_name(tmp_path, monkeypatch):
    """The default `vidstyle train` needs no data folder: it fits on the shipped set."""
    monkeypatch.setenv("VIDSTYLE_STYLES", str(tmp_path / "styles"))
    output = tmp_path / "mine.safetensors"
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(PAINTING), "-o", str(output), "--steps", "2",
                                 "--size", "64", "--style-size", "96", "--batch", "1",
                                 "--device", "cpu", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    added = runner.invoke(app, ["styles", "add", "mine", str(output)])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["styles", "list", "--json"])
    assert '"base": "arbitrary"' in listed.output
    frame = torch.rand(1, 3, 32, 48)
    with torch.inference_mode():
        assert load_style("mine")(frame).shape == frame.shape
        # Fitted rows blend with any painting's predicted style, in norm space.
        assert load_style("mine:0.5,wave_arbitrary:0.5")(frame).shape == frame.shape


@pytest.mark.parametrize("flags, message", [
    (["--teacher", "scream_arbitrary"], "--teacher: only with --method johnson"),
    (["--method", "johnson"], "--method johnson needs --data"),
    (["--method", "gan"], "--method must be one of"),
    (["--init", "mosaic.pth"], "--init: only with --method johnson"),
    (["--method", "johnson", "--data", "samples", "--darken", "0.5"],
     "--darken: only with --method fit"),
])
def test_cli_refuses_options_of_the_other_method_in_one_line(tmp_path, flags, message):
    result = CliRunner().invoke(app, ["train", str(PAINTING), "-o", str(tmp_path / "x.st"),
                                      *flags])
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
