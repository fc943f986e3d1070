"""The guard that keeps the media tests on the settings users get (issue 40): the
settings on by default, and the check that a test runs each of them at its default.

tests/test_media_matrix.py and tests/test_media_fuzz.py apply the check to the settings
their cases ran with; these tests show that it lists what it must and can fail."""

from __future__ import annotations

from dataclasses import dataclass

from helpers import defaults_on, is_off, leaf_settings, not_at_default, user_defaults

from vidstyle.config import KNOBS, Settings


def test_every_knob_is_a_setting_the_guard_sees():
    assert {knob.key for knob in KNOBS} <= set(leaf_settings(user_defaults()))


def test_the_defaults_that_are_on_include_what_every_user_runs():
    on = defaults_on(user_defaults())
    # The three issue 40 found the media tests turned off: the flicker filter, the
    # compile mode, the codec choice; "auto" is on.
    assert on["temporal"] == "auto" and on["compile"] == "auto"
    assert on["output.codec"] == "auto"
    assert on["temporal_strength"] > 0
    # Off by default, so an extra case, never the one every case must run.
    for key in ("temporal_structure", "max_size", "style_scale", "preserve_color", "resume",
                "start", "duration", "batch", "output.overwrite"):
        assert key not in on and is_off(leaf_settings(user_defaults())[key]), key


def test_the_users_compile_default_ignores_the_tests_environment(monkeypatch):
    monkeypatch.setenv("VIDSTYLE_COMPILE", "off")
    assert Settings().compile == "off"  # what conftest.py gives every other test
    assert user_defaults().compile == "auto"


def test_the_guard_catches_a_test_that_turns_a_default_off():
    defaults = user_defaults()
    assert not_at_default(defaults, defaults) == []
    assert not_at_default(defaults.replace(temporal="off"), defaults) == ["temporal"]
    assert not_at_default(defaults.replace(compile="off"), defaults) == ["compile"]
    changed = defaults.replace(output={"codec": "libx264", "crf": 30})
    assert not_at_default(changed, defaults) == ["output.codec", "output.crf"]
    # Turning on what is off by default is an extra case, not a lost default.
    assert not_at_default(defaults.replace(temporal_structure=5.0), defaults) == []


@dataclass
class LaterSettings(Settings):
    """Settings as they may grow: one new setting on by default, one off."""

    sharpen: str = "auto"
    denoise: bool = False


def test_the_guard_catches_a_new_setting_on_by_default_that_a_test_overrides():
    defaults = LaterSettings()
    assert defaults_on(defaults)["sharpen"] == "auto" and "denoise" not in defaults_on(defaults)
    assert not_at_default(LaterSettings(sharpen="off"), defaults) == ["sharpen"]
    assert not_at_default(LaterSettings(denoise=True), defaults) == []
