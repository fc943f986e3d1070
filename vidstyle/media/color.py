"""HDR pictures in and out: what an input's colour tags and side data say, the tone map
that turns HLG or PQ into the display-referred SDR BT.709 picture the style networks were
trained on, and its inverse for writing the input's HDR format back.

The numbers are ITU-R BT.2100 (PQ and HLG), BT.2087 (BT.2020 <-> BT.709 primaries),
BT.1886 (the SDR display's gamma 2.4), BT.2408 (HDR reference white, 203 cd/m2) and
BT.2390 (the EETF, a Hermite spline over PQ code values). The operator was chosen on
measured test pictures (benchmarks/tonemap.py, docs/camera.md): BT.2390 on max(R, G, B)
leaves diffuse tones (up to about 100 cd/m2) untouched, keeps highlight detail that a clip
loses, and keeps hue, which a per-channel curve does not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import av
import numpy as np

# FFmpeg's enum values (AVColorTransferCharacteristic, AVColorPrimaries, AVColorSpace).
TRC_BT709, TRC_PQ, TRC_HLG = 1, 16, 18
PRIMARIES_BT709, PRIMARIES_BT2020 = 1, 9
MATRIX_BT709, MATRIX_BT2020_NCL = 1, 9
RANGE_LIMITED = 1
TRANSFERS = {TRC_PQ: "pq", TRC_HLG: "hlg"}

# BT.2408: the HDR signal level of a diffuse white (a sheet of paper), 203 cd/m2 in both
# PQ and HLG (on a 1000 cd/m2 HLG display); SDR white sits above it after the tone map.
REFERENCE_WHITE = 203.0
# The SDR picture's peak in the tone map's terms: BT.2390 maps the source's peak here.
SDR_PEAK = REFERENCE_WHITE
# BT.2100 HLG: nominal display peak and its system gamma (1.2 at 1000 cd/m2).
HLG_PEAK = 1000.0
HLG_GAMMA = 1.2
# The peak assumed when a PQ file states no mastering display (HDR10's common grade).
DEFAULT_PQ_PEAK = 1000.0
SDR_GAMMA = 2.4  # BT.1886
# BT.2087 linear-light conversions; luminance weights of each set of primaries.
BT2020_TO_BT709 = np.array([[1.6605, -0.5876, -0.0728],
                            [-0.1246, 1.1329, -0.0083],
                            [-0.0182, -0.1006, 1.1187]], np.float32)
BT709_TO_BT2020 = np.array([[0.6274, 0.3293, 0.0433],
                            [0.0691, 0.9195, 0.0114],
                            [0.0164, 0.0880, 0.8956]], np.float32)
LUMA_BT2020 = np.array([0.2627, 0.6780, 0.0593], np.float32)
# PQ (SMPTE ST 2084) constants.
_M1, _M2 = 2610 / 16384, 2523 / 4096 * 128
_C1, _C2, _C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
# HLG OETF constants.
_HLG_A = 0.17883277
_HLG_B = 1 - 4 * _HLG_A
_HLG_C = 0.5 - _HLG_A * np.log(4 * _HLG_A)
# Points of the tabulated EETF (over PQ code values, interpolated linearly).
_EETF_POINTS = 4096


@dataclass(frozen=True)
class HdrFormat:
    """An HDR video's format: transfer, primaries and matrix tags, and the side data that
    goes with them. `mastering`: display primaries and white point as (x, y) pairs (R, G,
    B, white), then (max, min) luminance in cd/m2; `light_level`: (MaxCLL, MaxFALL)."""

    transfer: int  # TRC_PQ or TRC_HLG
    primaries: int = PRIMARIES_BT2020
    matrix: int = MATRIX_BT2020_NCL
    mastering: tuple[tuple[float, float], ...] | None = None
    light_level: tuple[int, int] | None = None
    dolby_vision: bool = False

    @property
    def name(self) -> str:
        return "HLG" if self.transfer == TRC_HLG else "PQ"

    @property
    def peak(self) -> float:
        """The brightest light the picture holds (cd/m2): what the tone map maps to SDR
        white. HLG is relative to a 1000 cd/m2 display; PQ's is the grade's (MaxCLL,
        else the mastering display's peak)."""
        if self.transfer == TRC_HLG:
            return HLG_PEAK
        if self.light_level and self.light_level[0] > REFERENCE_WHITE:
            return float(self.light_level[0])
        if self.mastering and self.mastering[-1][0] > REFERENCE_WHITE:
            return float(self.mastering[-1][0])
        return DEFAULT_PQ_PEAK

    def describe(self) -> str:
        return f"{self.name} BT.2020"


def is_hdr_transfer(trc: int) -> bool:
    return trc in TRANSFERS


def hdr_format(trc: int, primaries: int, matrix: int,
               side_data: object = (), codec_tag: str = "") -> HdrFormat | None:
    """The HDR format a stream's tags and one frame's side data describe; None for SDR."""
    if not is_hdr_transfer(trc):
        return None
    mastering = light = None
    dolby = codec_tag in ("dvh1", "dvhe", "dav1")
    for item in side_data_items(side_data):
        kind = item.type.name
        if kind == "MASTERING_DISPLAY_METADATA":
            mastering = parse_mastering_display(bytes(item))
        elif kind == "CONTENT_LIGHT_LEVEL":
            light = parse_light_level(bytes(item))
        elif kind.startswith("DOVI"):
            dolby = True
    return HdrFormat(trc, primaries or PRIMARIES_BT2020, matrix or MATRIX_BT2020_NCL,
                     mastering, light, dolby)


def side_data_items(side_data: object) -> list:
    """A frame's side-data entries, whatever PyAV version: iterating the container gives
    the entries in PyAV 18.1.0 (whose `.values()` then fails) and their types, the mapping's
    keys, in 18.1.1."""
    return [item if hasattr(item, "type") else side_data[item] for item in side_data]


def parse_mastering_display(data: bytes) -> tuple[tuple[float, float], ...] | None:
    """FFmpeg's AVMasteringDisplayMetadata: 8 rationals (R, G, B, white as x, y), max and
    min luminance as rationals, then has_primaries and has_luminance."""
    values = np.frombuffer(data[:80], "<i4").reshape(-1, 2)
    flags = np.frombuffer(data[80:88], "<i4")
    if len(values) < 10 or len(flags) < 2 or not (flags[0] and flags[1]):
        return None
    ratios = [float(n) / float(d) if d else 0.0 for n, d in values]
    pairs = [(ratios[i], ratios[i + 1]) for i in range(0, 8, 2)]
    return (*pairs, (ratios[9], ratios[8]))


def parse_light_level(data: bytes) -> tuple[int, int] | None:
    """FFmpeg's AVContentLightMetadata: MaxCLL, MaxFALL (unsigned ints, cd/m2)."""
    if len(data) < 8:
        return None
    max_cll, max_fall = np.frombuffer(data[:8], "<u4")
    return int(max_cll), int(max_fall)


def x265_hdr_params(hdr: HdrFormat) -> str:
    """The input's side data in x265's terms, so that the output's HEVC stream carries the
    same mastering-display and light-level SEI (chromaticities in 0.00002 units,
    luminance in 0.0001 cd/m2; x265 lists G, B, R)."""
    params = []
    if hdr.mastering:
        (rx, ry), (gx, gy), (bx, by), (wx, wy), (high, low) = hdr.mastering

        def xy(x: float, y: float) -> str:
            return f"({round(x * 50000)},{round(y * 50000)})"

        params.append(f"master-display=G{xy(gx, gy)}B{xy(bx, by)}R{xy(rx, ry)}"
                      f"WP{xy(wx, wy)}L({round(high * 10000)},{round(low * 10000)})")
    if hdr.light_level:
        params.append(f"max-cll={hdr.light_level[0]},{hdr.light_level[1]}")
    if hdr.transfer == TRC_PQ:
        params.append("hdr10=1")
    return ":".join(params)


# -- transfer functions (BT.2100) ------------------------------------------------------

def pq_to_nits(signal: np.ndarray) -> np.ndarray:
    """PQ EOTF: signal 0..1 -> display light, cd/m2."""
    p = np.power(np.clip(signal, 0, 1), 1 / _M2)
    return 10000 * np.power(np.maximum(p - _C1, 0) / (_C2 - _C3 * p), 1 / _M1)


def nits_to_pq(nits: np.ndarray) -> np.ndarray:
    """PQ inverse EOTF: display light, cd/m2 -> signal 0..1."""
    y = np.power(np.clip(nits / 10000, 0, 1), _M1)
    return np.power((_C1 + _C2 * y) / (1 + _C3 * y), _M2)


def hlg_to_scene(signal: np.ndarray) -> np.ndarray:
    """HLG inverse OETF: signal 0..1 -> scene light 0..1."""
    signal = np.clip(signal, 0, 1)
    low = signal * signal / 3
    high = (np.exp((signal - _HLG_C) / _HLG_A) + _HLG_B) / 12
    return np.where(signal <= 0.5, low, high)


def scene_to_hlg(scene: np.ndarray) -> np.ndarray:
    """HLG OETF: scene light 0..1 -> signal 0..1."""
    scene = np.clip(scene, 0, 1)
    low = np.sqrt(3 * scene)
    high = _HLG_A * np.log(np.maximum(12 * scene - _HLG_B, 1e-12)) + _HLG_C
    return np.where(scene <= 1 / 12, low, high)


def hlg_display(scene: np.ndarray) -> np.ndarray:
    """HLG OOTF on a 1000 cd/m2 display: scene RGB (H x W x 3, 0..1) -> cd/m2."""
    luma = np.maximum(scene @ LUMA_BT2020, 0)[..., None]
    return HLG_PEAK * np.power(luma, HLG_GAMMA - 1) * scene


def hlg_scene(display: np.ndarray) -> np.ndarray:
    """The HLG OOTF's inverse: display RGB in cd/m2 -> scene RGB 0..1."""
    luma = np.maximum(display @ LUMA_BT2020 / HLG_PEAK, 1e-12)[..., None]
    return np.power(luma, (1 - HLG_GAMMA) / HLG_GAMMA) * display / HLG_PEAK


def signal_to_nits(signal: np.ndarray, transfer: int) -> np.ndarray:
    """Non-linear BT.2020 RGB (0..1) -> display-light BT.2020 RGB in cd/m2."""
    if transfer == TRC_PQ:
        return pq_to_nits(signal)
    return hlg_display(hlg_to_scene(signal))


def nits_to_signal(nits: np.ndarray, transfer: int) -> np.ndarray:
    if transfer == TRC_PQ:
        return nits_to_pq(nits)
    return scene_to_hlg(hlg_scene(nits))


# -- the tone map (BT.2390 EETF on max(R, G, B)) ----------------------------------------

def eetf(nits: np.ndarray, peak: float, target: float = SDR_PEAK) -> np.ndarray:
    """BT.2390's EETF: source light [0, peak] -> [0, target] cd/m2, the identity below
    the knee and a Hermite spline above it, over PQ code values."""
    source_max = nits_to_pq(np.float64(peak))
    e1 = nits_to_pq(np.asarray(nits, np.float64)) / source_max
    max_lum = nits_to_pq(np.float64(target)) / source_max
    knee = 1.5 * max_lum - 0.5
    t = (e1 - knee) / (1 - knee)
    spline = ((2 * t**3 - 3 * t**2 + 1) * knee + (t**3 - 2 * t**2 + t) * (1 - knee)
              + (-2 * t**3 + 3 * t**2) * max_lum)
    e2 = np.where(e1 < knee, e1, np.minimum(spline, max_lum))
    return pq_to_nits(e2 * source_max)


def _eetf_table(peak: float) -> tuple[np.ndarray, np.ndarray]:
    """(source nits, mapped nits) over PQ code values up to `peak`, for both directions."""
    codes = np.linspace(0, nits_to_pq(np.float64(peak)), _EETF_POINTS)
    source = pq_to_nits(codes)
    return source, eetf(source, peak)


def tone_map(nits: np.ndarray, peak: float) -> np.ndarray:
    """HDR display light (cd/m2, any primaries) -> SDR-relative linear light (1 = SDR
    white): the EETF on each pixel's max(R, G, B), the pixel scaled by the same factor."""
    return _scale_brightest(nits, *_eetf_table(peak)) / np.float32(SDR_PEAK)


def _scale_brightest(nits: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each pixel scaled so that its max(R, G, B) moves from `source` to `target` (a
    monotonic table); float32, as a 1080p frame is 6 million values."""
    brightest = nits.max(axis=-1)
    moved = np.interp(brightest, source, target).astype(np.float32)
    scale = moved / np.maximum(brightest, np.float32(1e-9))
    return nits.astype(np.float32, copy=False) * scale[..., None]


def inverse_tone_map(relative: np.ndarray, peak: float) -> np.ndarray:
    """`tone_map`'s inverse: SDR-relative linear light -> HDR display light (cd/m2)."""
    source, mapped = _eetf_table(peak)
    return _scale_brightest(relative * np.float32(SDR_PEAK), mapped, source)


@functools.cache
def _linear_table(transfer: int) -> np.ndarray:
    """Each 16-bit code's linear value, per channel: cd/m2 for PQ, scene light for HLG
    (a table lookup instead of per-pixel powers, about half the time per frame)."""
    signal = np.arange(65536, dtype=np.float64) / 65535
    table = pq_to_nits(signal) if transfer == TRC_PQ else hlg_to_scene(signal)
    return table.astype(np.float32)


def sdr_from_hdr(rgb16: np.ndarray, hdr: HdrFormat) -> np.ndarray:
    """Non-linear BT.2020 HLG/PQ RGB (uint16, full scale) -> SDR BT.709 RGB uint8, as a
    BT.1886 display shows it: what the style networks saw in training."""
    nits = _linear_table(hdr.transfer)[rgb16]
    if hdr.transfer == TRC_HLG:
        nits = hlg_display(nits)
    if hdr.primaries == PRIMARIES_BT2020:
        nits = nits @ BT2020_TO_BT709.T
    relative = np.clip(tone_map(np.maximum(nits, 0), hdr.peak), 0, 1)
    return np.round(255 * np.power(relative, np.float32(1 / SDR_GAMMA))).astype(np.uint8)


def hdr_from_sdr(rgb8: np.ndarray, hdr: HdrFormat) -> np.ndarray:
    """`sdr_from_hdr`'s inverse: SDR BT.709 RGB uint8 -> the input's HDR format as
    non-linear RGB uint16 (full scale), ready for a 10-bit encoder."""
    relative = np.power(rgb8.astype(np.float32) / 255, np.float32(SDR_GAMMA))
    nits = inverse_tone_map(relative, hdr.peak)
    if hdr.primaries == PRIMARIES_BT2020:
        nits = np.maximum(nits @ BT709_TO_BT2020.T, 0)
    signal = nits_to_signal(nits, hdr.transfer)
    return np.round(65535 * np.clip(signal, 0, 1)).astype(np.uint16)


def decode_hdr_frame(frame: av.VideoFrame, hdr: HdrFormat) -> np.ndarray:
    """An HLG/PQ video frame as tone-mapped SDR BT.709 RGB uint8."""
    rgb16 = frame.to_ndarray(format="rgb48le", src_colorspace=hdr.matrix,
                             src_color_range=frame.color_range or RANGE_LIMITED)
    return sdr_from_hdr(rgb16, hdr)


def encode_hdr_frame(image: np.ndarray, hdr: HdrFormat, pix_fmt: str) -> av.VideoFrame:
    """SDR RGB uint8 (the network's output) as a frame in the input's HDR format."""
    frame = av.VideoFrame.from_ndarray(hdr_from_sdr(image, hdr), format="rgb48le")
    return frame.reformat(format=pix_fmt, dst_colorspace=hdr.matrix,
                          dst_color_range=RANGE_LIMITED)
