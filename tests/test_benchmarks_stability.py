"""benchmarks/stability.py: a network's steadiness under known motion, and its distance."""

from pathlib import Path

import torch

from benchmarks.stability import measure, network_named, read_photo
from vidstyle.train.stability import move

PHOTOS = Path(__file__).resolve().parent.parent / "samples" / "photos"


def test_a_network_is_at_zero_distance_from_itself_and_not_steady():
    photos = [read_photo(PHOTOS / "fruits.jpg", 96)]
    networks = {"a": network_named("multistyle26"), "b": network_named("multistyle26")}
    rows = measure(networks, photos, [19])
    assert [r["network"] for r in rows] == ["a", "b"]
    assert rows[1]["l1"] == 0 and rows[0]["motion"] == rows[1]["motion"] > 1e-3


def test_an_equivariant_network_scores_only_its_noise():
    class Identity(torch.nn.Module):
        def set_style_weights(self, weights):
            return self

        def forward(self, x):
            return x

    photo = read_photo(PHOTOS / "fruits.jpg", 96)
    rows = measure({"identity": Identity()}, [photo], [0])
    # Two independent noises of up to 0.02 std: the mean square is at most 2 * 0.02^2.
    assert 0 < rows[0]["motion"] < 2 * 0.02 ** 2
    assert move(photo, torch.eye(2, 3)[None]).shape == photo.shape


def test_contact_sheet_has_a_row_per_photo_and_preset(tmp_path):
    import cv2

    from benchmarks.stability import contact_sheet

    photo = read_photo(PHOTOS / "fruits.jpg", 64)
    out = tmp_path / "sheet.jpg"
    contact_sheet({"a": network_named("multistyle26")}, [photo], [0, 19], out)
    height, width = cv2.imread(str(out)).shape[:2]
    assert (height, width) == (2 * photo.shape[2], 2 * photo.shape[3])


def test_johnson_network_files_go_through_the_same_measures(tmp_path):
    import torch

    from benchmarks.stability import OneStyle
    from vidstyle.networks.johnson import JohnsonNet
    from vidstyle.styles.weights import write_safetensors

    # The former named style's network, and an untrained one: two different pictures.
    files = {"wreck": Path(__file__).resolve().parent / "data" / "johnson_scream.safetensors",
             "scream": tmp_path / "untrained.safetensors"}
    torch.manual_seed(0)
    write_safetensors(files["scream"], JohnsonNet().state_dict(), {})
    photo = read_photo(PHOTOS / "fruits.jpg", 64)
    wreck, scream = network_named(str(files["wreck"])), network_named(str(files["scream"]))
    assert isinstance(wreck, OneStyle)
    rows = measure({"wreck": wreck, "again": network_named(str(files["wreck"])),
                    "scream": scream}, [photo], [0])
    assert rows[1]["l1"] == 0 and rows[2]["l1"] > 0.05
    assert all(r["motion"] > 0 for r in rows)


def test_networks_that_share_a_stem_keep_apart_in_the_table():
    from benchmarks.stability import labels

    assert labels(["multistyle26", "out/stable.safetensors"]) == ["multistyle26", "stable"]
    assert labels(["wreck", "out/wreck.safetensors"]) == ["wreck", "out/wreck.safetensors"]
