"""Which tone map turns HLG/PQ footage into the SDR picture the style networks see.

    python -m benchmarks.tonemap [--photos samples/photos] [--peak 1000]
    python -m benchmarks.tonemap --roundtrip
    python -m benchmarks.tonemap --cost
    python -m benchmarks.tonemap --sheet docs/camera_hdr_sheet.jpg [--photo PHOTO.jpg]

`--roundtrip`: the chart as an HLG and a PQ HEVC Main 10 clip, through `stylize_video`
with the default settings and a network that changes nothing, written as SDR (the
default) and with `--hdr input`; each output read back through its own tags, patch by
patch: SDR in 8-bit codes against the tone map of the chart itself, HDR in 10-bit codes
of its transfer against the chart's signal.

HDR test pictures: a chart (grey patches from 0.5 to 1000 cd/m2, coloured patches at 60
and 400 cd/m2, as the camera tests' pattern), and the sample photos lifted to HDR as
a grade would: linear light with diffuse white at BT.2408's 203 cd/m2, the brightest 5% of
each photo stretched up to the peak (so highlights hold detail above reference white).
Each operator maps them to SDR BT.709 for a BT.1886 display (gamma 2.4, white = 203).

Measures, per operator:
- `diffuse`: mean 8-bit difference from the exact SDR picture over pixels up to
  100 cd/m2 (diffuse tones should look as graded: 0 is exact);
- `ramp levels`: distinct 8-bit codes a 203..peak ramp keeps (highlight detail; a clip
  keeps 1);
- `clipped`: share of the photos' highlight pixels (above 203 cd/m2) at code 255 in
  some channel;
- `hue`: mean hue change of saturated highlight pixels, degrees (a per-channel curve
  bends colours toward the primaries' mix; max(R, G, B) scaling keeps the ratios).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vidstyle.files import read_image
from vidstyle.media import color

WHITE = color.REFERENCE_WHITE
HIGHLIGHT_SHARE = 0.05  # the brightest share of a photo stretched above reference white
SHEET_QUALITY = 80  # JPEG quality of the contact sheet: small enough for the docs


def clip(nits: np.ndarray, peak: float) -> np.ndarray:
    return np.clip(nits / WHITE, 0, 1)


def reinhard(nits: np.ndarray, peak: float) -> np.ndarray:
    """Reinhard et al. 2002, extended, on luminance (white point = the peak)."""
    luma = np.maximum(nits @ np.array([0.2126, 0.7152, 0.0722]), 1e-9)[..., None] / WHITE
    white = peak / WHITE
    mapped = luma * (1 + luma / white**2) / (1 + luma)
    return nits / WHITE * mapped / luma


def bt2390_per_channel(nits: np.ndarray, peak: float) -> np.ndarray:
    return color.eetf(np.maximum(nits, 0), peak) / WHITE


def bt2390_max_rgb(nits: np.ndarray, peak: float) -> np.ndarray:
    return color.tone_map(np.maximum(nits, 0), peak)


OPERATORS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "clip": clip, "reinhard (luminance)": reinhard,
    "BT.2390 per channel": bt2390_per_channel, "BT.2390 on max(R,G,B) [shipped]": bt2390_max_rgb,
}


def to_code(relative: np.ndarray) -> np.ndarray:
    return np.round(255 * np.power(np.clip(relative, 0, 1), 1 / color.SDR_GAMMA))


def hdr_photo(path: Path, peak: float) -> np.ndarray:
    """A photo as HDR light (BT.709 primaries, cd/m2): sRGB decoded to linear, diffuse
    white at 203, the brightest HIGHLIGHT_SHARE stretched up to `peak`."""
    srgb = read_image(path).astype(np.float64) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    brightest = linear.max(axis=-1, keepdims=True)
    knee = np.quantile(brightest, 1 - HIGHLIGHT_SHARE)
    stretch = np.where(brightest > knee,
                       1 + (brightest - knee) / max(1 - knee, 1e-6) * (peak / WHITE - 1), 1)
    return linear * WHITE * stretch


def chart(peak: float) -> np.ndarray:
    """Grey steps from 0.5 cd/m2 to the peak, and six colours at 60 and 400 cd/m2 (as the
    camera tests' pattern, tests/cameragen.py), 16 px each."""
    greys = [(level,) * 3 for level in (0.5, 5, 20, 60, 120, 203, 400, 700, peak)]
    colours = [tuple(level * c for c in rgb) for level in (60, 400)
               for rgb in ((0.8, 0.2, 0.1), (0.15, 0.7, 0.2), (0.1, 0.2, 0.8),
                           (0.8, 0.7, 0.1), (0.6, 0.1, 0.6), (0.1, 0.6, 0.7))]
    row = np.array(greys + colours, np.float64)[None]
    return np.repeat(np.repeat(row, 16, axis=0), 16, axis=1)


def hue(rgb: np.ndarray) -> np.ndarray:
    """Hue angle (degrees) in an opponent plane of linear RGB."""
    a = rgb[..., 0] - 0.5 * (rgb[..., 1] + rgb[..., 2])
    b = np.sqrt(3) / 2 * (rgb[..., 1] - rgb[..., 2])
    return np.degrees(np.arctan2(b, a))


def measure(pictures: list[np.ndarray], peak: float) -> list[tuple[str, float, int, float, float]]:
    ramp = np.linspace(WHITE, peak, 1024)[:, None].repeat(3, axis=1)
    rows = []
    for name, operator in OPERATORS.items():
        diffuse, clipped, hues = [], [], []
        for nits in pictures:
            sdr = np.clip(operator(nits, peak), 0, 1)
            code = to_code(sdr)
            low = nits.max(axis=-1) <= 100
            diffuse.append(np.abs(code - to_code(nits / WHITE))[low].mean())
            high = nits.max(axis=-1) > WHITE
            if high.any():
                clipped.append((code[high] >= 255).any(axis=-1).mean())
                saturation = nits.max(axis=-1) - nits.min(axis=-1)
                vivid = high & (saturation > 0.3 * nits.max(axis=-1))
                if vivid.any():
                    turn = np.abs(hue(sdr[vivid]) - hue(nits[vivid]))
                    hues.append(np.minimum(turn, 360 - turn).mean())
        levels = len(np.unique(to_code(operator(ramp, peak))[:, 1]))
        rows.append((name, float(np.mean(diffuse)), levels, float(np.mean(clipped)),
                     float(np.mean(hues)) if hues else 0.0))
    return rows


def write_hdr_clip(path: Path, nits: np.ndarray, transfer: int, frames: int = 3) -> Path:
    """HDR light (BT.709 primaries, cd/m2) as a phone writes it: HEVC Main 10, BT.2020,
    HLG or PQ, in MOV, with the mastering display and light level of an HDR10 grade."""
    import av

    height, width = (side - side % 2 for side in nits.shape[:2])
    bt2020 = np.maximum(nits[:height, :width] @ color.BT709_TO_BT2020.T, 0)
    signal = np.round(65535 * color.nits_to_signal(bt2020, transfer)).astype(np.uint16)
    params = ("log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)"
              "WP(15635,16450)L(10000000,50):max-cll=1000,400")
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx265", rate=30, options={"x265-params": params,
                                                            "crf": "16", "preset": "fast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p10le"
        ctx = video.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace = (
            color.PRIMARIES_BT2020, transfer, color.MATRIX_BT2020_NCL)
        ctx.color_range, ctx.codec_tag = color.RANGE_LIMITED, "hvc1"
        for n in range(frames):
            frame = av.VideoFrame.from_ndarray(signal, format="rgb48le").reformat(
                format="yuv420p10le", dst_colorspace=color.MATRIX_BT2020_NCL,
                dst_color_range=color.RANGE_LIMITED)
            frame.pts = n
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def contact_sheet(photo: Path, out: Path, peak: float, width: int = 320) -> None:
    """One HLG and one PQ frame made from `photo`: the HDR signal shown as if it were SDR
    (what the network was fed before), the tone-mapped input (what it is fed now), and
    the stylized output as an SDR display shows it (default style and settings)."""
    import tempfile

    import av
    import cv2

    from vidstyle import Settings, stylize_video
    from vidstyle.images import resize_image
    from vidstyle.media.decode import frame_to_rgb

    image = read_image(photo)
    small = resize_image(image, (round(image.shape[0] * width / image.shape[1]), width))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, transfer in (("HLG", color.TRC_HLG), ("PQ", color.TRC_PQ)):
            cv2.imwrite(f"{folder}/p.png", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
            src = write_hdr_clip(Path(folder) / f"{name}.mov",
                                 hdr_photo(Path(folder) / "p.png", peak), transfer)
            result = stylize_video(src, Path(folder) / f"{name}.out.mov",
                                   Settings(compile="off"))
            with av.open(str(src)) as given, av.open(str(result.dst)) as written:
                frame = next(given.decode(video=0))
                raw = frame.to_ndarray(format="rgb24", src_colorspace=frame.colorspace,
                                       src_color_range=frame.color_range)
                tone_mapped = frame_to_rgb(frame)
                styled = frame_to_rgb(next(written.decode(video=0)))
            rows.append(np.concatenate([labelled(raw, f"{name} signal shown as SDR"),
                                        labelled(tone_mapped, f"{name} tone-mapped input"),
                                        labelled(styled, "stylized output (SDR)")], axis=1))
    sheet = cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(out), sheet, [cv2.IMWRITE_JPEG_QUALITY, SHEET_QUALITY])
    print(f"wrote {out}")


def labelled(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    picture = np.ascontiguousarray(image)
    cv2.rectangle(picture, (0, 0), (picture.shape[1], 18), (0, 0, 0), -1)
    cv2.putText(picture, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return picture


def roundtrip(peak: float) -> None:
    import tempfile

    import av
    import torch

    from vidstyle import Settings, stylize_video
    from vidstyle.media.decode import frame_to_rgb

    class Identity(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    nits = chart(peak)
    centres = [(slice(4, 12), slice(x + 4, x + 12)) for x in range(0, nits.shape[1], 16)]
    print("| input | output | error (mean, worst patch) | units |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, transfer in (("HLG", color.TRC_HLG), ("PQ", color.TRC_PQ)):
            hdr = color.HdrFormat(transfer)
            signal = np.round(65535 * color.nits_to_signal(
                np.maximum(nits @ color.BT709_TO_BT2020.T, 0), transfer)).astype(np.uint16)
            src = write_hdr_clip(Path(folder) / f"{name}.mov", nits, transfer)
            for mode in ("sdr", "input"):
                dst = Path(folder) / f"{name}.{mode}.mov"
                stylize_video(src, dst, Settings(style="identity", compile="off").replace(
                    output={"hdr": mode}), network=Identity())
                with av.open(str(dst)) as written:
                    frame = next(written.decode(video=0))
                if mode == "sdr":
                    got = frame_to_rgb(frame).astype(np.float64)
                    want = color.sdr_from_hdr(signal, hdr).astype(np.float64)
                    unit = "8-bit SDR codes"
                else:
                    got = frame.to_ndarray(format="rgb48le", src_colorspace=frame.colorspace,
                                           src_color_range=frame.color_range)
                    got = got.astype(np.float64) * 1023 / 65535
                    want = signal.astype(np.float64) * 1023 / 65535
                    unit = f"10-bit {name} codes"
                errors = [np.abs(got[c] - want[c]).mean() for c in centres]
                # The 700 cd/m2 patch (the chart's 8th): BT.2390 puts it in the SDR
                # picture's top code, which maps back to the peak.
                squeezed = {7} if mode == "input" else set()
                kept = [e for i, e in enumerate(errors) if i not in squeezed]
                note = f"; 700 cd/m2 patch off by {errors[7]:.0f}" if squeezed else ""
                print(f"| {name} | {'SDR BT.709' if mode == 'sdr' else name} | "
                      f"{np.mean(kept):.1f}, {np.max(kept):.1f}{note} | {unit} |")


def best_time(function, picture: np.ndarray, hdr: color.HdrFormat, repeats: int) -> float:
    import time

    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function(picture, hdr)
        best = min(best, time.perf_counter() - started)
    return best


def cost(width: int = 1920, height: int = 1080, repeats: int = 3) -> None:
    """Seconds per frame of the tone map and its inverse (best of `repeats`)."""
    rng = np.random.default_rng(0)
    signal = rng.integers(0, 65536, (height, width, 3), dtype=np.uint16)
    for name, transfer in (("HLG", color.TRC_HLG), ("PQ", color.TRC_PQ)):
        hdr = color.HdrFormat(transfer)
        sdr = color.sdr_from_hdr(signal, hdr)
        times = {"to SDR": best_time(color.sdr_from_hdr, signal, hdr, repeats),
                 "back to HDR": best_time(color.hdr_from_sdr, sdr, hdr, repeats)}
        print(f"{name} {width}x{height}: " + ", ".join(f"{k} {v:.2f} s" for k, v in
                                                       times.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, default=Path("samples/photos"))
    parser.add_argument("--peak", type=float, default=1000.0)
    parser.add_argument("--sheet", type=Path, help="write the contact sheet here instead")
    parser.add_argument("--photo", type=Path, default=Path("samples/photos/fruits.jpg"))
    parser.add_argument("--roundtrip", action="store_true",
                        help="measure the writer's HDR round trip instead")
    parser.add_argument("--cost", action="store_true", help="time the tone map instead")
    args = parser.parse_args()
    if args.cost:
        cost()
        return
    if args.roundtrip:
        roundtrip(args.peak)
        return
    if args.sheet:
        contact_sheet(args.photo, args.sheet, args.peak)
        return
    pictures = [chart(args.peak)]
    pictures += [hdr_photo(p, args.peak) for p in sorted(args.photos.glob("*.jpg"))]
    print(f"{len(pictures)} HDR test pictures (chart + {len(pictures) - 1} photos), "
          f"peak {args.peak:g} cd/m2, SDR white {WHITE:g}")
    print(f"| operator | diffuse (8-bit) | ramp levels 203-{args.peak:g} | clipped | hue (deg) |")
    print("|---|---|---|---|---|")
    for name, diffuse, levels, clipped, turn in measure(pictures, args.peak):
        print(f"| {name} | {diffuse:.2f} | {levels} | {100 * clipped:.1f}% | {turn:.1f} |")


if __name__ == "__main__":
    main()
