"""The tone-map benchmark measures what it says: a clip shows no highlight levels, the
shipped operator leaves diffuse tones and hue alone."""

from __future__ import annotations

from benchmarks.tonemap import chart, measure


def test_tone_map_measures_tell_the_operators_apart():
    rows = {name: (diffuse, levels, clipped, hue)
            for name, diffuse, levels, clipped, hue in measure([chart(1000.0)], 1000.0)}
    assert rows["clip"][1] == 1  # every highlight is white
    diffuse, levels, _, hue = rows["BT.2390 on max(R,G,B) [shipped]"]
    assert diffuse < 0.1 and levels > 10 and hue < 0.5
    assert rows["reinhard (luminance)"][0] > 1.0  # darkens the diffuse tones
    assert rows["BT.2390 per channel"][3] > hue  # bends highlight colours
