"""The single-pass job (vidstyle/job.py): what a result says, whose loss counts, and the
engine's two hooks, on real clips through the default temporal filter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from helpers import InvertNetwork, decoded_frames, make_clip

from vidstyle.api import Stylizer
from vidstyle.config import Settings
from vidstyle.engines.base import Engine, EngineBase
from vidstyle.errors import StyleError
from vidstyle.job import VideoResult, stylize_pass
from vidstyle.media.probe import probe
from vidstyle.media.report import MuxReport, StreamFate

CPU = torch.device("cpu")


def settings(**changes) -> Settings:
    """The user's defaults (the flow filter included), with a quick encoder."""
    return Settings(style="invert", device="cpu", **changes).replace(
        output={"preset": "ultrafast"})


def test_a_result_from_a_mux_report_has_its_fates_warnings_and_loss(tmp_path):
    report = MuxReport(copied=[1], transcoded=[2], warnings=["stream #3 dropped: no room"],
                       streams=[StreamFate(0, "video", "h264", "stylized"),
                                StreamFate(1, "audio", "aac", "copied"),
                                StreamFate(2, "audio", "ac3", "transcoded"),
                                StreamFate(3, "subtitle", "ass", "dropped", "no room")])
    result = VideoResult.from_mux(
        report, src=tmp_path / "a.mkv", dst=tmp_path / "b.mp4", frames=10, seconds=2.0,
        device="cpu", precision="fp32", input_warnings=["2 damaged video packet(s)"],
        notes=["resumed: 1 of 2 segments were already done"], ended_early=(1.0, 2.0))
    assert result.warnings == ["2 damaged video packet(s)", "stream #3 dropped: no room",
                               "resumed: 1 of 2 segments were already done"]
    assert result.copied_streams == [1] and result.transcoded_streams == [2]
    assert [s["fate"] for s in result.streams] == ["stylized", "copied", "transcoded",
                                                    "dropped"]
    assert result.data_lost and result.ended_early == (1.0, 2.0) and result.fps == 5.0
    whole = VideoResult.from_mux(MuxReport(), src=tmp_path / "a.mp4", dst=tmp_path / "b.mp4",
                                 frames=1, seconds=1.0)
    assert not whole.data_lost and whole.warnings == []


def test_input_cut_short_is_a_warning_not_a_loss(tmp_path):
    # Issue 40: what the input itself lacks (a file cut short, video packets that do not
    # decode) is warned about; only what vidstyle left out counts as lost (exit 3).
    whole = make_clip(tmp_path / "whole.mkv", frames=25, audio_tracks=1)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 3 // 5])
    result = Stylizer(settings(), network=InvertNetwork()).video(cut, tmp_path / "out.mkv")
    assert 0 < result.frames < 25 and result.ended_early is not None
    assert any(w.startswith("video ended at") for w in result.warnings), result.warnings
    assert not result.data_lost
    assert len(decoded_frames(result.dst)) == result.frames


def test_a_stream_vidstyle_drops_is_a_loss(tmp_path):
    from mediagen import Audio, Spec, make_media

    # A Matroska file named .mp4: its ASS subtitles cannot go into MP4.
    src = make_media(tmp_path / "clip.mp4", Spec("mkv", audio=(Audio("aac"),), subtitles=True))
    result = Stylizer(settings(), network=InvertNetwork()).video(src, tmp_path / "out.mp4")
    assert [s["fate"] for s in result.streams] == ["stylized", "copied", "dropped"]
    assert result.data_lost and any("dropped" in w for w in result.warnings)


@dataclass
class Holder:
    """The least a pass needs of its caller (`job.EngineHolder`)."""

    engine: Engine
    device: torch.device = CPU
    dtype: torch.dtype = torch.float32


class Hooked(EngineBase):
    """Inverts frames; refuses videos longer than `longest` seconds and counts what the
    pipeline reads through its `frames_from` wrapper."""

    def __init__(self, longest: float) -> None:
        self.longest = longest
        self.items = 0
        self.stylized = 0

    def check_video(self, src: Path, duration: float | None) -> None:
        if duration is not None and duration > self.longest:
            raise StyleError(f"{src}: longer than {self.longest} s")

    def frames_from(self, demuxer):
        engine = self

        class Counted:
            def items(self):
                for item in demuxer.items():
                    engine.items += 1
                    yield item

            def __getattr__(self, name):
                return getattr(demuxer, name)

        return Counted()

    def stylize(self, frames: torch.Tensor) -> torch.Tensor:
        self.stylized += len(frames)
        return 255 - frames

    def reset(self) -> None:
        pass


def test_the_pass_asks_the_engine_to_check_the_video_and_reads_through_it(tmp_path):
    src = make_clip(tmp_path / "clip.mp4", frames=12)
    info = probe(src)
    refusing = Hooked(longest=0.1)
    with pytest.raises(StyleError, match="longer than"):
        stylize_pass(Holder(refusing), settings(), src, tmp_path / "no.mp4", info)
    assert refusing.stylized == 0 and not list(tmp_path.glob("*no*"))  # before any work
    engine = Hooked(longest=60.0)
    result = stylize_pass(Holder(engine), settings(), src, tmp_path / "yes.mp4", info)
    assert result.frames == engine.stylized == 12 and engine.items >= 12
