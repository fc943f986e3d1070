"""The stability fine-tune of the 26-style network (vidstyle/train/stability.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vidstyle.cli import app
from vidstyle.errors import SettingsError, StyleError
from vidstyle.networks.conditional import one_hot_style
from vidstyle.styles.resolve import load_multistyle, load_style
from vidstyle.styles.spec import style_slug
from vidstyle.train.stability import (
    StabilityLoss,
    StabilitySettings,
    darken,
    move,
    random_motion,
    stabilize,
    valid_mask,
)

PHOTOS = Path(__file__).resolve().parent.parent / "samples" / "photos"


def test_move_by_whole_pixels_is_an_exact_shift():
    image = torch.rand(1, 3, 32, 32)
    motion = torch.tensor([[[1.0, 0.0, 2 * 2 / 32], [0.0, 1.0, 0.0]]])  # 2 px right
    moved = move(image, motion)
    # Output pixel x reads input pixel x + 2.
    assert torch.allclose(moved[..., :, :-2], image[..., :, 2:], atol=1e-5)
    assert moved[..., :, -1].abs().max() == 0  # read from outside: zero


def test_random_motion_stays_within_the_limits():
    settings = StabilitySettings(max_shift=1.5, max_rotation=0.0, max_zoom=0.0)
    motion = random_motion(200, 64, settings, torch.Generator().manual_seed(0))
    shift_px = motion[:, :, 2].abs() * 64 / 2
    assert float(shift_px.max()) <= 1.5 + 1e-6
    assert float(shift_px.max()) > 1.0  # and uses them
    assert torch.allclose(motion[:, :, :2], torch.eye(2).expand(200, 2, 2))


def test_valid_mask_leaves_out_what_comes_from_outside():
    motion = torch.tensor([[[1.0, 0.0, 4 * 2 / 64], [0.0, 1.0, 0.0]]])  # 4 px
    mask = valid_mask(motion, 64, margin=2)[0, 0]
    assert mask[2:62, 2:58].all()
    assert not mask[:, 58:].any() and not mask[:, :2].any() and not mask[:2].any()


def test_a_shift_equivariant_student_scores_zero_stability():
    """Identity network: its output moves exactly with its input, so only the noise is left,
    and without noise the stability term is zero; the shipped preset 19 is not."""
    settings = StabilitySettings(max_noise=0.0, texture_weight=0.0)
    crops = torch.rand(2, 3, 64, 64)
    identity = torch.nn.Identity()
    terms = StabilityLoss(settings)(identity, identity, crops, torch.Generator().manual_seed(0))
    assert float(terms["stability"]) < 1e-10 and float(terms["picture"]) == 0
    shipped = load_multistyle().set_style_weights(one_hot_style(19))
    with torch.no_grad():
        terms = StabilityLoss(settings)(shipped, shipped, crops,
                                        torch.Generator().manual_seed(0))
    assert float(terms["stability"]) > 1e-3


@pytest.fixture(scope="module")
def stabilized(tmp_path_factory) -> tuple[Path, list[dict[str, float]]]:
    out = tmp_path_factory.mktemp("stable") / "stable.safetensors"
    settings = StabilitySettings(steps=30, size=64, batch=2, learning_rate=1e-3,
                                 texture_weight=0.0, presets=(19,), checkpoint_every=15)
    result = stabilize(PHOTOS, out, settings=settings)
    return out, result.losses


def test_fine_tune_lowers_the_stability_term(stabilized):
    # Preset 19's own norm rows only (about 1000 numbers): 30 steps took the term to 0.81x
    # when written; a whole Johnson network goes further (test below).
    _, losses = stabilized
    first = np.mean([x["stability"] for x in losses[:5]])
    last = np.mean([x["stability"] for x in losses[-5:]])
    assert last < 0.9 * first


def test_the_written_network_loads_as_a_preset_spec(stabilized):
    path, _ = stabilized
    frame = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        tuned = load_style(f"preset:19@{path}")(frame)
        shipped = load_style("preset:19")(frame)
    assert tuned.shape == shipped.shape and not torch.equal(tuned, shipped)
    assert style_slug(f"preset:19@{path}") == "preset19_stable"


def test_a_subset_of_presets_tunes_only_their_own_norm_rows(stabilized):
    from vidstyle.styles.weights import read_safetensors

    path, _ = stabilized
    tuned, metadata = read_safetensors(path)
    start = load_multistyle("multistyle26").state_dict()
    changed = [k for k in tuned if not torch.equal(tuned[k].float(), start[k].float())]
    assert changed and all(k.endswith((".norm.scale", ".norm.shift")) for k in changed)
    for key in changed:
        rows = (tuned[key].float() != start[key].float()).any(dim=1).nonzero().flatten()
        assert rows.tolist() == [19], key
    assert metadata["presets"] == "19"


def test_all_presets_train_the_shared_convolutions_too(tmp_path):
    from vidstyle.styles.weights import read_safetensors

    out = tmp_path / "all.safetensors"
    stabilize(PHOTOS, out, settings=StabilitySettings(steps=2, size=64, batch=1,
                                                      texture_weight=0.0, learning_rate=1e-3))
    tuned, metadata = read_safetensors(out)
    start = load_multistyle("multistyle26").state_dict()
    changed = {k for k in tuned if not torch.equal(tuned[k].float(), start[k].float())}
    assert any(k.endswith(".conv2d.weight") for k in changed)
    assert metadata["presets"] == ",".join(map(str, range(26)))


def test_presets_of_different_files_do_not_blend(stabilized):
    path, _ = stabilized
    with pytest.raises(StyleError, match="different 26-style networks"):
        load_style(f"preset:19@{path}:0.5,preset:3:0.5")


def test_missing_network_file_is_a_style_error(tmp_path):
    with pytest.raises(StyleError, match="not found"):
        load_style(f"preset:3@{tmp_path / 'none.safetensors'}")


@pytest.mark.parametrize("bad", [dict(size=30), dict(steps=0), dict(learning_rate=0),
                                 dict(stability_weight=-1), dict(presets=(26,)),
                                 dict(max_darken=1.0), dict(max_darken=-0.1)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(SettingsError):
        StabilitySettings(**bad).validate()


def test_darken_dims_each_crop_by_one_gain_and_zero_leaves_everything_alone():
    crops = torch.rand(64, 3, 8, 8) * 0.5 + 0.25
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert darken(crops, 0.0, generator) is crops
    assert torch.equal(generator.get_state(), state)  # the random stream is untouched
    gains = (darken(crops, 0.7, generator) / crops).flatten(1)
    assert torch.allclose(gains, gains[:, :1].expand_as(gains))
    assert 0.3 <= gains.min() < 0.4 and 0.9 < gains.max() <= 1.0


def test_cli_writes_the_network(tmp_path):
    from vidstyle.styles.weights import read_safetensors

    out = tmp_path / "s.safetensors"
    result = CliRunner().invoke(app, ["stabilize", "--data", str(PHOTOS), "-o", str(out),
                                      "--steps", "2", "--size", "64", "--texture-weight", "0",
                                      "--darken", "0.5", "--preset", "7", "--preset", "3"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "(2" in result.output
    metadata = read_safetensors(out)[1]
    assert "darken 0.5" in metadata["objective"] and metadata["presets"] == "3,7"


def test_named_presets_and_preset_numbers_run_the_same_network():
    from vidstyle.styles.catalogue import load_catalogue
    from vidstyle.styles.resolve import PRESET_NETWORK

    networks = {s.network for s in load_catalogue().styles.values() if s.preset is not None}
    assert networks == {PRESET_NETWORK}
    load_style("golden_haze:0.5,preset:3:0.5")  # so they blend


def test_a_shipped_network_can_be_named_after_the_at():
    frame = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        named = load_style("preset:4@multistyle26")(frame)
    assert named.shape == frame.shape
    with pytest.raises(StyleError, match="not found"):
        load_style("preset:4@arbitrary")  # not a 26-style network: read as a file name


def test_a_johnson_style_is_stabilized_into_a_style_file(tmp_path):
    out = tmp_path / "scream_stable.safetensors"
    settings = StabilitySettings(steps=3, size=64, batch=1, texture_weight=0.0,
                                 learning_rate=1e-3)
    johnson = Path(__file__).resolve().parent / "data" / "johnson_scream.safetensors"
    stabilize(PHOTOS, out, settings=settings, network=str(johnson))
    frame = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        tuned, shipped = load_style(str(out))(frame), load_style(str(johnson))(frame)
    assert tuned.shape == shipped.shape and not torch.equal(tuned, shipped)


def test_a_fitted_style_is_refused_by_name(tmp_path):
    with pytest.raises(StyleError, match="a fitted style is fitted steady"):
        stabilize(PHOTOS, tmp_path / "x.safetensors", network="scream")


def test_an_unknown_network_is_a_style_error(tmp_path):
    with pytest.raises(StyleError, match="no such network"):
        stabilize(PHOTOS, tmp_path / "x.safetensors", network="no_such_style")
