"""Settings: presets from TOML, flags on top, validation, fingerprints."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidstyle.config import (
    IMAGE,
    KNOBS,
    TEMPORAL_MODES,
    VIDEO,
    Settings,
    build_settings,
    knobs_for,
    load_config,
)
from vidstyle.errors import SettingsError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("preset", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_preset_loads_and_validates(preset):
    load_config(preset).validate()


def test_flags_override_the_config_and_none_means_not_given():
    settings = build_settings(CONFIGS / "quality.toml", batch=2, temporal=None,
                              **{"output.crf": 30, "gatys.iterations": None})
    assert settings.batch == 2
    assert settings.temporal == "flow"  # from the file
    assert settings.output.crf == 30
    assert settings.output.preset == "slow"  # from the file, beside an overridden key


def test_unknown_key_in_config_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('styel = "wave"\n')
    with pytest.raises(SettingsError, match=r"bad\.toml.*styel"):
        load_config(bad)


def test_invalid_toml_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("batch = = 3\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_config(bad)


@pytest.mark.parametrize(
    "changes",
    [{"engine": "magic"}, {"precision": "fp8"}, {"batch": 0}, {"strength": 1.5},
     {"temporal": "maybe"}, {"output": {"crf": 99}}],
)
def test_validation_rejects_impossible_values(changes):
    with pytest.raises(SettingsError):
        Settings().replace(**changes).validate()


@pytest.mark.parametrize("changes", [{"temporal": "blend"}, {"temporal": "off"},
                                     {"engine": "gatys"}])
def test_the_coarse_picture_test_is_refused_where_no_flow_filter_runs(changes):
    Settings(temporal_structure=5.0).validate()  # the fast engine's flow filter takes it
    with pytest.raises(SettingsError, match="temporal_structure applies to the flow filter"):
        Settings(temporal_structure=5.0).replace(**changes).validate()


def test_fingerprint_ignores_speed_knobs_but_not_the_look():
    base = Settings(style="scream")
    assert base.fingerprint() == base.replace(batch=16, device="cpu", compile="on").fingerprint()
    assert base.fingerprint() != base.replace(style="wave").fingerprint()
    assert base.fingerprint() != base.replace(output={"crf": 30}).fingerprint()
    assert base.fingerprint() != base.replace(gatys={"iterations": 5}).fingerprint()
    assert base.fingerprint() != base.replace(temporal_structure=5.0).fingerprint()


@pytest.mark.parametrize("knob", KNOBS, ids=lambda k: k.key)
def test_every_knob_names_a_setting_whose_default_passes_its_own_rules(knob):
    default = knob.default()
    assert default is None or isinstance(default, knob.value_type())
    knob.check(default)
    assert knob.option_names[0].startswith("--")


def test_a_config_file_is_held_to_the_same_rules_as_the_flags(tmp_path):
    preset = tmp_path / "p.toml"
    preset.write_text("[output]\ncrf = 99\n")
    with pytest.raises(SettingsError) as from_file:
        build_settings(preset)
    with pytest.raises(SettingsError) as from_flag:
        build_settings(None, **{"output.crf": 99})
    assert str(from_file.value) == str(from_flag.value) == "crf must be between 0 and 63, got 99"


def test_choices_and_ranges_come_from_the_knob_table():
    by_key = {k.key: k for k in KNOBS}
    assert by_key["temporal"].choices == TEMPORAL_MODES
    assert "One of: auto, off, blend, flow." in by_key["temporal"].describe()
    assert "From 0 to 1." in by_key["strength"].describe()
    with pytest.raises(SettingsError, match="duration must be more than 0"):
        Settings(duration=0.0).validate()
    with pytest.raises(SettingsError, match="unknown gatys.optimizer 'sgd'"):
        Settings().replace(gatys={"optimizer": "sgd"}).validate()


def test_knobs_for_a_job_and_without_some():
    video = {k.key for k in knobs_for(VIDEO)}
    image = {k.key for k in knobs_for(IMAGE)}
    assert {"temporal", "output.codec", "batch"} <= video - image
    assert "gatys.init" in image - video
    assert "style" not in {k.key for k in knobs_for(VIDEO, without=("style",))}
