"""The engine factory (vidstyle/engines/factory.py) and the hooks every engine answers:
the engine the settings name, its precision, its temporal filter."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch
from helpers import InvertNetwork

from vidstyle.config import Settings
from vidstyle.engines.base import EngineBase
from vidstyle.engines.factory import build_engine, engine_precision, make_temporal_filter
from vidstyle.engines.fast import FastEngine
from vidstyle.engines.scheduled import ScheduledEngine
from vidstyle.errors import SettingsError, StyleError
from vidstyle.media.decode import DecodedFrame
from vidstyle.temporal.blend import BlendFilter, FlowFilter

CPU = torch.device("cpu")


def test_fast_settings_give_a_fast_engine_with_the_temporal_filter_they_name():
    for mode, kind in (("flow", FlowFilter), ("blend", BlendFilter)):
        engine = build_engine(Settings(style="x", temporal=mode), CPU, torch.float32,
                              InvertNetwork())
        assert type(engine) is FastEngine and isinstance(engine.temporal_filter, kind)
        engine.close()
    off = build_engine(Settings(style="x", temporal="off"), CPU, torch.float32,
                       InvertNetwork())
    assert off.temporal_filter is None


def test_a_schedule_gives_the_scheduled_engine_and_needs_the_fast_one():
    spec = "0:preset:2, 1:preset:7"
    engine = build_engine(Settings(style=spec), CPU, torch.float32)
    assert isinstance(engine, ScheduledEngine)
    assert isinstance(engine.inner.temporal_filter, FlowFilter)  # the default, shared
    engine.close()
    with pytest.raises(SettingsError, match="need --engine fast"):
        build_engine(Settings(style=spec, engine="gatys"), CPU, torch.float32)


def test_the_scheduled_engines_hooks_check_the_cues_and_time_each_frame():
    engine = build_engine(Settings(style="0:preset:2, 3:preset:7"), CPU, torch.float32)
    engine.check_video(Path("long.mp4"), 10.0)
    with pytest.raises(StyleError, match="past the end of the video"):
        engine.check_video(Path("short.mp4"), 2.0)

    class Demuxer:
        def items(self):
            yield DecodedFrame(None, 50, Fraction(1, 100), 4, 0)
            yield "a packet of another stream"
            yield DecodedFrame(None, 54, Fraction(1, 100), 4, 1)

    assert list(engine.frames_from(Demuxer()).items())[1] == "a packet of another stream"
    assert list(engine.times) == [0.5, 0.54]  # what `stylize` reads, frame by frame
    engine.close()


def test_other_engines_read_the_demuxer_itself_and_take_any_video():
    engine = build_engine(Settings(style="x"), CPU, torch.float32, InvertNetwork())
    demuxer = object()
    assert engine.frames_from(demuxer) is demuxer
    engine.check_video(Path("any.mp4"), None)  # no exception
    assert EngineBase().frames_from(demuxer) is demuxer


def test_gatys_runs_in_fp32_on_a_cpu_and_refuses_an_explicit_bf16():
    assert engine_precision(Settings(engine="gatys"), CPU) == torch.float32
    assert engine_precision(Settings(engine="gatys", precision="fp32"), CPU) == torch.float32
    with pytest.raises(SettingsError, match="does nothing for --engine gatys"):
        engine_precision(Settings(engine="gatys", precision="bf16"), CPU)
    assert engine_precision(Settings(precision="fp32"), CPU) == torch.float32


def test_the_coarse_picture_setting_reaches_the_flow_filter():
    assert make_temporal_filter(Settings(temporal="off")) is None
    assert make_temporal_filter(Settings()).structure_alpha == 0.0
    assert make_temporal_filter(Settings(temporal_structure=5.0)).structure_alpha == 5.0
