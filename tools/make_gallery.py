"""Render the README's pictures as small JPEGs in docs/gallery/.

* The gallery strips: one frame of a sample clip, and one photo no style was fitted or
  tuned on (samples/heldout/), as they are and in each named style.
* The styles table's thumbnails: one sample photo in each kind of style (the five named
  styles, a preset of the 26-style network, and a painting file through the
  arbitrary-style network).

Every picture goes through the public API (`vidstyle.stylize_image`) at the default
settings, at the frame's or photo's own size, and is shrunk only for the page. Rerun it
whenever a style's network changes:

    python tools/make_gallery.py
    python tools/make_gallery.py --clip samples/cup.mp4 --frame 100 \
        --photo samples/photos/baboon.jpg
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import vidstyle
from vidstyle.files import read_image, write_image
from vidstyle.images import resize_image, scaled_to_long_side
from vidstyle.media.frames import video_frames

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "gallery"
NAMED_STYLES = ("scream", "wave", "wreck", "udnie", "starry_night")
# Thumbnail file stem -> the --style that makes it: each kind of style a user can name.
THUMBNAILS = {
    **{name: name for name in NAMED_STYLES},
    "golden_haze": "golden_haze",  # preset 0 of the 26-style network
    "painting": "samples/paintings/wave.png",  # any painting, through the arbitrary network
}
GALLERY_WIDTH = 256  # six tiles across a README column
THUMBNAIL_SIDE = 160


def video_frame(clip: Path, index: int):
    """RGB pixels of frame `index` (0-based, display order) of `clip`."""
    for number, pixels in enumerate(video_frames(clip)):
        if number == index:
            return pixels
    raise SystemExit(f"{clip}: has no frame {index}")


def shrink(pixels, long_side: int):
    height, width = pixels.shape[:2]
    return resize_image(pixels, scaled_to_long_side(height, width, long_side))


def stylized(pixels, style: str, scratch: Path):
    """`pixels` through `style` at the default settings (compiling left off: a one-off)."""
    src, dst = scratch / "in.png", scratch / "out.png"
    write_image(src, pixels)
    settings = vidstyle.Settings(style=style, compile="off").replace(output={"overwrite": True})
    vidstyle.stylize_image(src, dst, settings)
    return read_image(dst)


def save_jpeg(pixels, name: str) -> Path:
    path = OUT / f"{name}.jpg"
    write_image(path, pixels, suffix=".jpg")
    return path


def render(clip: Path, frame: int, photo: Path, heldout: Path) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        original = video_frame(clip, frame)
        jobs = [(original, "frame", None, GALLERY_WIDTH)]
        jobs += [(original, f"frame.{style}", style, GALLERY_WIDTH) for style in NAMED_STYLES]
        unseen = read_image(heldout)
        jobs.append((unseen, "heldout", None, GALLERY_WIDTH))
        jobs += [(unseen, f"heldout.{style}", style, GALLERY_WIDTH) for style in NAMED_STYLES]
        picture = read_image(photo)
        jobs.append((picture, "thumb.original", None, THUMBNAIL_SIDE))
        jobs += [(picture, f"thumb.{name}", style, THUMBNAIL_SIDE)
                 for name, style in THUMBNAILS.items()]
        for pixels, name, style, side in jobs:
            started = time.monotonic()
            out = pixels if style is None else stylized(pixels, str(ROOT / style)
                                                        if "/" in style else style, scratch)
            written.append(save_jpeg(shrink(out, side), name))
            print(f"{written[-1].relative_to(ROOT)}  ({style or 'original'}, "
                  f"{time.monotonic() - started:.1f} s)", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=ROOT / "samples" / "bigbuckbunny.mp4")
    parser.add_argument("--frame", type=int, default=70, help="frame index (default 70: 2.8 s)")
    parser.add_argument("--photo", type=Path, default=ROOT / "samples" / "photos" / "building.jpg")
    parser.add_argument("--heldout", type=Path, default=ROOT / "samples" / "heldout" / "castle.jpg")
    args = parser.parse_args(argv)
    try:
        render(args.clip, args.frame, args.photo, args.heldout)
    except vidstyle.VidstyleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
