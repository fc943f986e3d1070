"""`vidstyle.train`: a few real training steps on tiny crops of the sample photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from vidstyle.errors import InputError, SettingsError
from vidstyle.networks.johnson import JohnsonNet
from vidstyle.styles.weights import read_johnson_weights
from vidstyle.train import (
    TrainingData,
    TrainSettings,
    checkpoint_dir_for,
    straight_through_clamp,
    temporal_loss,
    train_style,
)

SAMPLES = Path(__file__).parent.parent / "samples"
PHOTOS = SAMPLES / "photos"
# The painting stand-in: a real photo with strong texture (the paintings are not shipped).
STYLE = PHOTOS / "baboon.jpg"
# 64 px crops, fp32 on the CPU: each step takes well under a second.
TINY = TrainSettings(steps=12, size=64, batch=2, style_size=128, learning_rate=5e-3,
                     device="cpu", precision="fp32", checkpoint_every=6, seed=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[dict[str, float]]]:
    output = tmp_path_factory.mktemp("train") / "tiny.safetensors"
    seen: list[dict[str, float]] = []
    train_style(STYLE, PHOTOS, output, settings=TINY, on_step=lambda e: seen.append(e.losses))
    return output, seen


def test_losses_fall(trained):
    _, losses = trained
    assert len(losses) == TINY.steps
    first = np.mean([step["total"] for step in losses[:3]])
    last = np.mean([step["total"] for step in losses[-3:]])
    assert last < 0.8 * first, (first, last)
    assert {"content", "style", "tv", "total"} <= set(losses[0])


def test_output_loads_into_johnson_net_and_runs(trained):
    output, _ = trained
    with safe_open(str(output), framework="pt") as file:
        metadata = file.metadata()
        dtypes = {file.get_tensor(key).dtype for key in file.keys()}  # noqa: SIM118
    assert metadata["style"] == "tiny" and metadata["steps"] == str(TINY.steps)
    assert metadata["size"] == "64"
    assert dtypes == {torch.float16}
    network = JohnsonNet()
    network.load_state_dict(read_johnson_weights(output))
    photo = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        styled = network.eval()(photo)
    assert styled.shape == photo.shape
    assert styled.min() >= 0.0 and styled.max() <= 1.0
    assert (styled - photo).abs().mean() > 0.01  # it changed the picture


def test_checkpoint_has_state_and_previews(trained):
    output, _ = trained
    folder = checkpoint_dir_for(output)
    state = json.loads((folder / "state.json").read_text())
    assert state["step"] == TINY.steps
    assert len(state["losses"]) == TINY.steps
    assert sorted(p.name for p in folder.glob("preview_*.jpg")) == [
        "preview_000006.jpg", "preview_000012.jpg"]


def test_resume_continues_from_the_step_count(trained, tmp_path):
    output, _ = trained
    copy = tmp_path / "tiny.safetensors"
    copy.write_bytes(output.read_bytes())
    folder = checkpoint_dir_for(copy)
    folder.mkdir()
    for item in checkpoint_dir_for(output).iterdir():
        (folder / item.name).write_bytes(item.read_bytes())
    steps: list[int] = []
    more = TrainSettings(**{**TINY.to_json(), "steps": TINY.steps + 3, "style_layers":
                            TINY.style_layers})
    result = train_style(STYLE, PHOTOS, copy, settings=more, resume=True,
                         on_step=lambda e: steps.append(e.step))
    assert steps == [13, 14, 15]
    assert result.steps == 15
    assert json.loads((folder / "state.json").read_text())["step"] == 15
    with safe_open(str(copy), framework="pt") as file:
        assert file.metadata()["steps"] == "15"


def test_data_position_restores_the_crop_sequence():
    data = TrainingData(PHOTOS, 64, seed=5)
    data.batch(3)
    position = json.loads(json.dumps(data.position()))  # as state.json stores it
    ahead = data.batch(2)
    data.batch(4)
    data.restore(position)
    assert torch.equal(data.batch(2), ahead)


def test_resume_without_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(InputError, match="resume"):
        train_style(STYLE, PHOTOS, tmp_path / "none.safetensors", settings=TINY, resume=True)


def test_straight_through_clamp_keeps_gradient_outside_the_range():
    image = torch.tensor([-0.5, 0.5, 1.5], requires_grad=True)
    clamped = straight_through_clamp(image)
    clamped.sum().backward()
    assert clamped.tolist() == [0.0, 0.5, 1.0]
    assert image.grad.tolist() == [1.0, 1.0, 1.0]


def test_temporal_pairs_from_a_real_clip_warp_consistently():
    data = TrainingData(SAMPLES / "cup.mp4", 64, video_frames=6, pairs=True)
    assert data.pairs
    pair = data.pair()
    assert pair.flow_back.shape == (64, 64, 2) and pair.mask.mean() > 0.3
    previous = torch.from_numpy(pair.previous).permute(2, 0, 1)[None].float() / 255
    current = torch.from_numpy(pair.current).permute(2, 0, 1)[None].float() / 255
    # The input frames themselves are what a perfectly stable stylization looks like:
    # their warp error is far below that of an unrelated picture.
    stable = temporal_loss(previous, current, pair)
    unrelated = temporal_loss(previous.flip(3).flip(2), current, pair)
    assert stable < 0.25 * unrelated


def test_data_folder_without_pictures_is_a_user_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no pictures here")
    with pytest.raises(InputError, match="no readable images"):
        TrainingData(tmp_path, 64)


def test_the_held_out_folder_is_never_read(tmp_path):
    """tools/build_training_set.py writes the held-out photos to DATA/heldout/: pointing
    --data at the whole set must not train on them (it did before round 11)."""
    photos = Path(__file__).resolve().parent.parent / "samples" / "photos"
    (tmp_path / "heldout").mkdir()
    (tmp_path / "photos").mkdir()
    for source in sorted(photos.glob("*.jpg")):
        (tmp_path / "heldout" / source.name).write_bytes(source.read_bytes())
    with pytest.raises(InputError, match="no readable images"):
        TrainingData(tmp_path, 64)
    (tmp_path / "photos" / "fruits.jpg").write_bytes((photos / "fruits.jpg").read_bytes())
    assert [p.parent.name for p in TrainingData(tmp_path, 64).photos] == ["photos"]


@pytest.mark.parametrize("bad", [{"size": 66}, {"steps": 0}, {"style_weight": -1.0},
                                 {"content_layer": "relu9_9"}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(SettingsError):
        TrainSettings(**bad).validate()


def test_cli_trains_and_reports_the_file(tmp_path):
    from typer.testing import CliRunner

    from vidstyle.cli import app

    output = tmp_path / "cli.safetensors"
    result = CliRunner().invoke(app, [
        "train", str(STYLE), "--method", "johnson", "--data", str(PHOTOS), "-o", str(output),
        "--steps", "2",
        "--size", "32", "--batch", "1", "--style-size", "64", "--device", "cpu",
        "--precision", "fp32", "--name", "cli-style",
    ])
    assert result.exit_code == 0, result.output
    assert output.is_file()
    with safe_open(str(output), framework="pt") as file:
        assert file.metadata()["style"] == "cli-style"


def test_cli_unknown_data_folder_is_one_line_error(tmp_path):
    from typer.testing import CliRunner

    from vidstyle.cli import app

    result = CliRunner().invoke(app, ["train", str(STYLE), "--method", "johnson",
                                      "--data", str(tmp_path / "missing"),
                                      "-o", str(tmp_path / "x.safetensors")])
    assert result.exit_code != 0
    assert "training data folder not found" in result.output


def test_teacher_pulls_the_network_toward_its_output(tmp_path):
    """With only the teacher term, a few steps bring the student much closer to the
    arbitrary network's picture of a held-out photo than the untrained start was."""
    from vidstyle.styles.resolve import load_style
    from vidstyle.train import to_tensor

    settings = TrainSettings(**{**TINY.to_json(), "style_layers": TINY.style_layers,
                                "steps": 15, "teacher": "scream", "teacher_weight": 1.0,
                                "content_weight": 0.0, "style_weight": 0.0, "tv_weight": 0.0})
    seen: list[dict[str, float]] = []
    output = tmp_path / "student.safetensors"
    train_style(STYLE, PHOTOS, output, settings=settings, on_step=lambda e: seen.append(e.losses))
    assert set(seen[0]) == {"content", "style", "tv", "teacher", "total"}
    photo = to_tensor(TrainingData(PHOTOS, 64, seed=7).textured_crop()[None])
    torch.manual_seed(TINY.seed)  # the same initialisation train_style started from
    untrained, student = JohnsonNet(), JohnsonNet()
    student.load_state_dict(read_johnson_weights(output))
    with torch.no_grad():
        target = load_style("scream")(photo)
        before = (untrained(photo) - target).abs().mean()
        after = (student(photo) - target).abs().mean()
    assert after < 0.75 * before, (before, after)


def load_gpu_tool():
    import importlib.util

    path = Path(__file__).parent.parent / "tools" / "train_named_gpu.py"
    spec = importlib.util.spec_from_file_location("train_named_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_named_styles_share_content_features_without_changing_the_losses():
    """One VGG pass for the photos and one for all outputs give each style exactly the
    loss `vidstyle train` would give it on its own."""
    tool = load_gpu_tool()
    torch.manual_seed(0)
    styles = tool.NamedStyles(["scream", "wave"], TINY, torch.device("cpu"))
    content = TrainingData(PHOTOS, 64, seed=3).batch(2)
    alone = []
    for stylize, network, loss in zip(styles.stylizers, styles.networks, styles.losses,
                                      strict=True):
        with torch.no_grad():
            alone.append(float(sum(loss(stylize(network, content), content).values())))
    shared = styles.step(content)
    assert shared == pytest.approx(alone, rel=1e-4)
    assert alone[0] != pytest.approx(alone[1], rel=1e-3)  # two paintings, two targets


def test_gpu_tool_trains_named_styles_at_tiny_scale_on_a_cpu(tmp_path):
    tool = load_gpu_tool()
    assert tool.main(["--data", str(PHOTOS), "--out", str(tmp_path), "--styles", "scream",
                      "udnie", "--steps", "3", "--size", "32", "--batch", "1",
                      "--style-size", "64", "--device", "cpu", "--precision", "fp32"]) == 0
    for name in ("scream", "udnie"):
        path = tmp_path / f"johnson_{name}.safetensors"
        with safe_open(str(path), framework="pt") as file:
            assert file.metadata()["style"] == name and file.metadata()["steps"] == "3"
            assert file.metadata()["style_image"].startswith(name)
        JohnsonNet().load_state_dict(read_johnson_weights(path))
