"""The HDR maths (vidstyle.media.color): transfer functions, the tone map and its
inverse, the side data read and written."""

from __future__ import annotations

import numpy as np
import pytest
from cameragen import Camera, patch_centres, pattern_nits, pattern_signal

from vidstyle.media import color


def test_transfer_functions_invert():
    nits = np.array([0.0, 0.1, 5, 100, 203, 1000, 4000])
    assert np.allclose(color.pq_to_nits(color.nits_to_pq(nits)), nits, rtol=1e-4)
    grey = np.repeat(nits[nits <= 1000][:, None], 3, axis=1)
    back = color.nits_to_signal(color.signal_to_nits(
        color.nits_to_signal(grey, color.TRC_HLG), color.TRC_HLG), color.TRC_HLG)
    assert np.allclose(back, color.nits_to_signal(grey, color.TRC_HLG), atol=1e-5)
    # BT.2408: HLG's 75% signal is reference white, 203 cd/m2 on a 1000 cd/m2 display.
    assert color.signal_to_nits(np.full((1, 3), 0.75), color.TRC_HLG)[0, 0] == \
        pytest.approx(203, rel=0.01)


def test_tone_map_keeps_diffuse_tones_and_orders_highlights():
    peak = 1000.0
    mapped = color.eetf(np.array([10.0, 50.0, 203.0, 500.0, 1000.0]), peak)
    assert mapped[:2] == pytest.approx([10.0, 50.0], rel=1e-6)  # below the knee: as is
    assert np.all(np.diff(mapped) > 0) and mapped[-1] == pytest.approx(color.SDR_PEAK)
    hlg = color.HdrFormat(color.TRC_HLG)
    sdr = np.arange(256, dtype=np.uint8).reshape(1, -1, 1).repeat(3, axis=2)
    assert np.array_equal(color.sdr_from_hdr(color.hdr_from_sdr(sdr, hlg), hlg), sdr)


def test_pattern_levels_are_what_the_camera_coded():
    camera = Camera("mov", "pq")
    nits = color.signal_to_nits(pattern_signal(camera).astype(np.float64) / 65535,
                                color.TRC_PQ) @ np.linalg.inv(color.BT709_TO_BT2020).T
    expected = pattern_nits(*camera.size)
    for ys, xs in patch_centres(*camera.size):
        assert np.allclose(nits[ys, xs], expected[ys, xs], rtol=0.01, atol=0.05)


def test_side_data_reaches_x265_as_the_camera_wrote_it():
    # The same string cameragen gives x265 (G, B, R, white point, max/min luminance).
    from cameragen import LIGHT_LEVEL, MASTERING

    mastering = ((0.68, 0.32), (0.265, 0.69), (0.15, 0.06), (0.3127, 0.329), (1000.0, 0.005))
    hdr = color.HdrFormat(color.TRC_PQ, mastering=mastering, light_level=LIGHT_LEVEL)
    assert color.x265_hdr_params(hdr) == (f"master-display={MASTERING}:max-cll=1000,400:"
                                         "hdr10=1")
    assert hdr.peak == 1000.0
    assert color.HdrFormat(color.TRC_HLG).peak == color.HLG_PEAK
