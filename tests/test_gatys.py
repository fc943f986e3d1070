"""The optimisation engine on real photos and real video frames, at small sizes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from helpers import photo

from vidstyle.config import GatysSettings, Settings
from vidstyle.engines.gatys import GatysEngine, optimize_image
from vidstyle.losses import style_distance
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.targets import StyleTarget, style_target

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SETTINGS = GatysSettings(iterations=20, frame_iterations=20, tolerance=0.0)


@pytest.fixture(scope="module")
def vgg():
    return load_vgg19()


@pytest.fixture(scope="module")
def scream(vgg) -> StyleTarget:
    return style_target("scream", vgg, SETTINGS.style_layers)


def clip_frames(count: int, step: int, width: int = 80) -> list[np.ndarray]:
    """`count` real frames, `step` apart, of the sample clip, resized to `width`."""
    import cv2

    frames = []
    with av.open(str(SAMPLES / "bigbuckbunny.mp4")) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % step == 0:
                image = frame.to_ndarray(format="rgb24")
                height = round(image.shape[0] * width / image.shape[1])
                frames.append(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
            if len(frames) == count:
                break
    return frames


def as_tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255


def test_loss_decreases_steadily_and_style_moves_toward_the_target(vgg, scream):
    content = photo("building.jpg", 48)
    result = optimize_image(content, scream, SETTINGS, vgg=vgg)
    losses = np.array(result.losses)
    assert len(losses) == SETTINGS.iterations
    assert losses[-1] < 0.1 * losses[0]
    increases = (losses[1:] > losses[:-1] * 1.01).mean()
    assert increases < 0.15  # L-BFGS may overshoot now and then, not habitually
    layers = list(SETTINGS.style_layers)
    before = style_distance(content, scream.grams, vgg, layers).item()
    after = style_distance(result.image, scream.grams, vgg, layers).item()
    assert after < 0.3 * before
    assert result.image.shape == content.shape
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0


def test_adam_also_converges(vgg, scream):
    content = photo("fruits.jpg", 32)
    settings = dataclasses.replace(SETTINGS, optimizer="adam", iterations=10)
    losses = optimize_image(content, scream, settings, vgg=vgg).losses
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow  # ~40 s on 2 cores: three optimisations of a frame
def test_warm_start_reaches_the_cold_loss_in_fewer_iterations(vgg, scream):
    first, second = clip_frames(2, step=3, width=64)
    cold = optimize_image(as_tensor(second), scream, SETTINGS, vgg=vgg).losses
    # Same objective (no temporal term) so the losses compare; only the start differs.
    settings = dataclasses.replace(SETTINGS, temporal_weight=0.0, warm_start="flow")
    engine = GatysEngine(settings, scream, torch.device("cpu"))
    engine.stylize(torch.from_numpy(np.stack([first, second])))
    warm = engine.last_losses
    reached = next(i for i, loss in enumerate(warm + [0.0]) if loss <= cold[-1])
    assert reached <= len(cold) // 2


def test_engine_keeps_frame_shape_and_honours_max_size(scream):
    frames = torch.from_numpy(np.stack(clip_frames(2, step=2, width=96)))
    settings = dataclasses.replace(SETTINGS, iterations=3, frame_iterations=2)
    engine = GatysEngine(settings, scream, torch.device("cpu"), max_size=48)
    out = engine.stylize(frames)
    assert out.shape == frames.shape and out.dtype == torch.uint8
    assert engine.previous_output.shape[-1] == 48  # optimised at the reduced size
    engine.reset()
    assert engine.previous_output is None


def test_hybrid_starts_from_the_network_output(scream, invert):
    frames = torch.from_numpy(np.stack(clip_frames(2, step=2, width=64)))
    settings = dataclasses.replace(SETTINGS, refine_iterations=0)
    engine = GatysEngine(settings, scream, torch.device("cpu"), init_network=invert)
    out = engine.stylize(frames).int()
    # No refinement, and the first frame has no past: exactly the network's output.
    assert (out[0] - (255 - frames[0].int())).abs().max() <= 1


def test_build_from_job_settings(invert):
    settings = Settings(style="udnie", engine="gatys", max_size=32)
    with GatysEngine.from_settings(settings, torch.device("cpu")) as engine:
        assert engine.max_size == 32
        assert set(engine.style.grams) == set(settings.gatys.style_layers)
        assert engine.on_iteration is None


def test_video_reports_iterations_and_cancels_inside_a_frame(tmp_path):
    """A Gatys frame runs for minutes on a CPU: progress must move inside it, and a cancel
    must stop it mid-frame, leaving no output behind."""
    import threading

    from helpers import make_clip

    from vidstyle import Stylizer
    from vidstyle.errors import Cancelled

    clip = make_clip(tmp_path / "clip.mp4", size=(48, 32), frames=3)
    settings = Settings(style="scream", engine="gatys", temporal="off")
    settings.gatys.iterations, settings.gatys.frame_iterations = 4, 2
    settings.gatys.tolerance = 0.0
    stylizer = Stylizer(settings)
    events = []
    stylizer.video(clip, tmp_path / "out.mp4", on_progress=events.append)
    iterations = [e for e in events if e.kind == "iteration"]
    assert iterations and iterations[0].iterations_total == 4
    assert all(e.loss is not None and e.loss > 0 for e in iterations)

    cancel = threading.Event()

    def cancel_at_first_iteration(event):
        if event.kind == "iteration":
            cancel.set()

    with pytest.raises(Cancelled):
        stylizer.video(clip, tmp_path / "cancelled.mp4", on_progress=cancel_at_first_iteration,
                       cancel=cancel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (96, 2)])
def test_any_frame_size_is_optimised_and_comes_back_exact(scream, size):
    settings = dataclasses.replace(SETTINGS, iterations=2)
    engine = GatysEngine(settings, scream, torch.device("cpu"))
    frames = torch.full((1, size[1], size[0], 3), 128, dtype=torch.uint8)
    out = engine.stylize(frames)
    assert out.shape == frames.shape and out.dtype == torch.uint8
