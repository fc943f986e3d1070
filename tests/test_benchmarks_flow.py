"""benchmarks/flow.py: round 8's smoothings after DIS and round 10's edge-aware flows
(docs/research/2026-12-02-a-better-flow.md)."""

import numpy as np
import pytest

from benchmarks.flow import CANDIDATES, filled_where_flat, guided_where_flat
from benchmarks.temporal_lab import has_contrib

MOTION = np.float32([2.0, -1.0])


@pytest.fixture
def flat_hole():
    """A textured frame with a flat 40-px square in it, a flow of MOTION everywhere but
    garbage in the square (where DIS has nothing to match), and the square's centre."""
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (160, 200), dtype=np.uint8)
    gray[60:100, 80:120] = 128
    flow = np.broadcast_to(MOTION, (160, 200, 2)).copy()
    flow[60:100, 80:120] = (9.0, 7.0)
    return gray, flow, (slice(70, 90), slice(90, 110))


@pytest.mark.parametrize("smooth", [filled_where_flat, guided_where_flat])
def test_flat_pixels_take_their_textured_neighbours_motion(flat_hole, smooth):
    gray, flow, centre = flat_hole
    out = smooth(gray, flow)
    assert out.shape == flow.shape and np.isfinite(out).all()
    garbage = np.linalg.norm(flow[centre] - MOTION, axis=-1).mean()
    repaired = np.linalg.norm(out[centre] - MOTION, axis=-1).mean()
    assert repaired < 0.2 * garbage, (repaired, garbage)
    # Far from the square, the textured frame's flow is left as it was.
    assert np.abs(out[:30, :60] - MOTION).max() < 0.05


@pytest.mark.parametrize("smooth", [filled_where_flat, guided_where_flat])
def test_a_uniform_flow_is_left_uniform(flat_hole, smooth):
    gray, _, _ = flat_hole
    flow = np.broadcast_to(MOTION, gray.shape + (2,)).copy()
    np.testing.assert_allclose(smooth(gray, flow), flow, atol=1e-3)


# Round 10's candidates are OpenCV contrib's (the "lab" extra, pyproject.toml).
ROUNDS = [pytest.param(name, marks=pytest.mark.skipif(
    name == "round10" and not has_contrib(),
    reason="OpenCV without the contrib modules: pip install -e '.[lab]'"))
    for name in sorted(CANDIDATES)]


@pytest.mark.parametrize("round_name", ROUNDS)
def test_every_candidate_finds_a_known_shift(round_name):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    base = np.kron(base, np.ones((4, 4), np.uint8))  # 240x320, features DIS can follow
    previous = base[:, 4:-4]
    current = base[:, 1:-7]  # content moved 3 px right: current[x] = previous[x - 3]
    for name, estimate in CANDIDATES[round_name]().items():
        flow = estimate(np.dstack([current] * 3), np.dstack([previous] * 3))
        inner = flow[16:-16, 16:-16]
        assert np.abs(np.median(inner[..., 0]) + 3) < 0.5, name
        assert np.abs(np.median(inner[..., 1])) < 0.5, name
