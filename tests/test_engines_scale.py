"""`--style-scale`: the working resolution a network runs at, and the engine's use of it."""

from __future__ import annotations

import pytest
import torch

from vidstyle.engines.fast import FastEngine
from vidstyle.engines.scale import (
    MAX_WORKING_SIDE,
    TRAINING_SCENE_FACTOR,
    default_style_scale,
    resize_to_working,
    trained_size_of,
    working_size,
)


def test_scale_one_reproduces_the_training_scene_size():
    # 256-px crops were cut from scenes with a 320-px short side: a 1080p frame runs there.
    assert working_size(1080, 1920, 1.0, 256) == (320, 569)
    assert working_size(480, 640, 1.0, 128) == (160, 213)
    assert 256 * TRAINING_SCENE_FACTOR == 320


def test_bigger_scale_means_a_smaller_working_image_and_bigger_strokes():
    sizes = [working_size(720, 1280, s, 256) for s in (0.5, 1.0, 2.0)]
    assert sizes == [(640, 1138), (320, 569), (160, 284)]


def test_working_size_is_bounded_and_refuses_nonsense():
    assert max(working_size(720, 1280, 0.01, 256)) == MAX_WORKING_SIDE
    assert min(working_size(720, 1280, 100.0, 256)) == 32
    with pytest.raises(ValueError):
        working_size(720, 1280, 0.0)


def test_resize_to_working_keeps_aspect_and_content():
    x = torch.linspace(0, 1, 640)[None, None, None, :].expand(1, 3, 480, 640).contiguous()
    small = resize_to_working(x, 1.0, 128)
    assert small.shape[-2:] == (160, 213)
    assert abs(float(small.mean()) - float(x.mean())) < 1e-3  # a gradient stays a gradient
    assert resize_to_working(small, 1.0, 128) is small  # already there: untouched


class SizeRecorder(torch.nn.Module):
    """Identity that remembers the size it ran at, and says it was trained on 64-px crops."""

    size_multiple = 4
    trained_size = 64

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        return x


def test_engine_runs_the_network_at_the_working_size_and_returns_the_frame_size():
    network = SizeRecorder()
    assert trained_size_of(network) == 64
    engine = FastEngine(network, torch.device("cpu"), style_scale=0.5)
    frames = torch.randint(0, 255, (1, 120, 200, 3), dtype=torch.uint8)
    out = engine.stylize(frames)
    assert out.shape == frames.shape
    assert network.seen == [(160, 268)]  # 64 * 1.25 / 0.5 = 160 short side, padded to 4s
    plain = SizeRecorder()
    FastEngine(plain, torch.device("cpu")).stylize(frames)
    assert plain.seen == [(120, 200)]  # no style scale: the frame's own size, as before


def test_style_scale_reaches_the_engine_and_the_shipped_training_size():
    from vidstyle import Settings, Stylizer

    with Stylizer(Settings(style="scream", style_scale=0.5, device="cpu")) as stylizer:
        engine = stylizer.engine
        assert engine.style_scale == 0.5 and engine.trained_size == 192  # the fit's crops


def test_a_fitted_style_paints_at_its_working_size_unless_told_otherwise():
    """The named styles keep one stroke size at every resolution: by default the network
    runs with its short side at `WORKING_SIDE`, and the picture is brought back."""
    from vidstyle.styles import load_style
    from vidstyle.styles.fitted import WORKING_SIDE

    network = load_style("scream")
    assert network.working_side == WORKING_SIDE
    assert default_style_scale(network) == pytest.approx(192 * 1.25 / WORKING_SIDE)
    recorder = SizeRecorder()
    recorder.working_side = 80
    frames = torch.randint(0, 255, (1, 120, 200, 3), dtype=torch.uint8)
    assert FastEngine(recorder, torch.device("cpu")).stylize(frames).shape == frames.shape
    assert recorder.seen == [(80, 136)]  # short side 80, the aspect kept, padded to 4s
    FastEngine(recorder, torch.device("cpu"), style_scale=0.5).stylize(frames)
    assert recorder.seen[-1] == (160, 268)  # an explicit --style-scale wins
    assert default_style_scale(load_style("blue_swirl")) is None  # presets: frame size
