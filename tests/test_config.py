"""Settings: presets from TOML, flags on top, validation, fingerprints."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidstyle.config import Settings, build_settings, load_config
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


def test_fingerprint_ignores_speed_knobs_but_not_the_look():
    base = Settings(style="scream")
    assert base.fingerprint() == base.replace(batch=16, device="cpu", compile=True).fingerprint()
    assert base.fingerprint() != base.replace(style="wave").fingerprint()
    assert base.fingerprint() != base.replace(output={"crf": 30}).fingerprint()
    assert base.fingerprint() != base.replace(gatys={"iterations": 5}).fingerprint()
