"""The feed-forward engine: geometry, precision and the network interface."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from helpers import InvertNetwork

from vidstyle.engines.fast import FastEngine, downscale_to_fit, pad_to_multiple


@pytest.mark.parametrize("size", [(338, 640), (37, 53), (2, 3)])
def test_pad_then_crop_restores_any_size(size):
    x = torch.rand(2, 3, *size)
    padded, pads = pad_to_multiple(x, 8)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert torch.equal(padded[..., : size[0], : size[1]], x)


def test_downscale_never_enlarges():
    x = torch.rand(1, 3, 100, 60)
    assert downscale_to_fit(x, 200).shape == x.shape
    assert downscale_to_fit(x, 50).shape[-2:] == (50, 30)


def test_engine_maps_uint8_frames_through_the_network(samples):
    import cv2

    photo = cv2.cvtColor(cv2.imread(str(samples / "photos" / "butterfly.jpg")), cv2.COLOR_BGR2RGB)
    frames = torch.from_numpy(np.stack([photo, photo[::-1].copy()]))
    engine = FastEngine(InvertNetwork(), torch.device("cpu"), torch.float32)
    out = engine.stylize(frames)
    assert out.dtype == torch.uint8 and out.shape == frames.shape
    assert torch.equal(out, 255 - frames)


class ShapeCheckingNetwork(torch.nn.Module):
    size_multiple = 4

    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[int, int]] = []

    def forward(self, x):
        assert x.shape[-1] % 4 == 0 and x.shape[-2] % 4 == 0
        self.shapes.append(tuple(x.shape[-2:]))
        return x


def test_engine_respects_size_multiple_and_max_size():
    frames = torch.randint(0, 255, (1, 101, 203, 3), dtype=torch.uint8)
    network = ShapeCheckingNetwork()
    engine = FastEngine(network, torch.device("cpu"), max_size=64)
    out = engine.stylize(frames)
    assert out.shape == frames.shape
    # 203x101 shrunk to a 64-px long side (64x32), padded to the multiple of 4
    assert network.shapes == [(32, 64)]


def test_flow_computed_ahead_in_a_thread_matches_the_serial_filter(samples):
    """The engine's look-ahead flow must give exactly what the filter computes on its own,
    across batch boundaries (the first frame of a batch pairs with the last of the one before)."""
    from helpers import decoded_frames

    from vidstyle.temporal.blend import FlowFilter

    frames = [f.to_ndarray(format="rgb24") for f in decoded_frames(samples / "cup.mp4")[:7]]
    engine = FastEngine(InvertNetwork(), torch.device("cpu"), torch.float32,
                        temporal_filter=FlowFilter(0.85))
    batched = [engine.stylize(torch.from_numpy(np.stack(frames[i:i + 3]))) for i in (0, 3, 6)]
    serial_filter = FlowFilter(0.85)
    serial = [
        serial_filter(frame, torch.from_numpy(255 - frame).permute(2, 0, 1).float() / 255.0)
        for frame in frames
    ]
    expected = torch.stack([(s.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
                            for s in serial])
    got = torch.cat(batched)
    assert not torch.equal(got, torch.from_numpy(255 - np.stack(frames)))  # the filter acted
    difference = (got.int() - expected.int()).abs()
    assert difference.max() <= 1, (difference.max(), (difference > 0).float().mean())


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a C++ build: minutes on a shared 2-core machine
def test_compiled_network_gives_the_eager_pictures(tmp_path, monkeypatch):
    # --compile only changes speed: same frames out (bf16 rounding aside) as eager mode.
    # A build that fails falls back to the eager network (with a warning), which would
    # compare eager with eager: so the test first makes sure the package is what ran.
    from vidstyle.engines.fast import has_cxx_compiler
    from vidstyle.networks.johnson import JohnsonNet

    if not has_cxx_compiler():
        pytest.skip("no C++ compiler here, so --compile on runs the eager network")
    monkeypatch.setenv("VIDSTYLE_COMPILE_CACHE", str(tmp_path))  # not the user's cache
    torch.manual_seed(0)
    network = JohnsonNet()
    frames = torch.randint(0, 256, (2, 64, 96, 3), dtype=torch.uint8)
    eager = FastEngine(network, torch.device("cpu")).stylize(frames)
    engine = FastEngine(network, torch.device("cpu"), compile=True)
    engine.stylize(frames)  # builds the package (and checks it against the eager network)
    eager_calls = []
    network.register_forward_hook(lambda module, inputs, output: eager_calls.append(1))
    compiled = engine.stylize(frames)
    assert not eager_calls, "the compiled engine ran the eager network"
    assert compiled.shape == eager.shape
    assert (compiled.int() - eager.int()).abs().max() <= 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_network_threads_take_the_cores_this_process_may_use(monkeypatch):
    # A `taskset` or container limit bounds the network's threads, whatever the machine's
    # core count; within it the network takes every core (OpenMP threads sleep while they
    # wait, vidstyle/_openmp.py, so none is kept back for decode and encode).
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    allowed, before = os.sched_getaffinity(0), torch.get_num_threads()
    try:
        for cores in ({min(allowed)}, allowed):
            os.sched_setaffinity(0, cores)
            torch.set_num_threads(64)  # more than any core count here: the engine lowers it
            FastEngine(InvertNetwork(), torch.device("cpu"))
            assert torch.get_num_threads() == len(cores)
    finally:
        os.sched_setaffinity(0, allowed)
        torch.set_num_threads(before)


def test_the_flows_of_a_batch_run_side_by_side(monkeypatch):
    import threading
    import time

    from vidstyle.engines import fast
    from vidstyle.temporal.blend import FlowFilter

    assert fast.flow_workers(16) == 8 and fast.flow_workers(2) == 1
    assert fast.flow_workers(1) == 1

    running, most = [0], [0]
    lock = threading.Lock()

    class SlowFlow(FlowFilter):
        def estimate(self, previous, content):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.05)  # long enough that the four calls overlap if they can
            with lock:
                running[0] -= 1
            return super().estimate(previous, content)

    monkeypatch.setattr(fast, "flow_workers", lambda cores=None: 4)
    engine = FastEngine(InvertNetwork(), torch.device("cpu"), temporal_filter=SlowFlow(0.9))
    frames = torch.randint(0, 256, (5, 24, 32, 3), dtype=torch.uint8)
    out = engine.stylize(frames)
    engine.close()
    assert out.shape == frames.shape
    assert most[0] == 4  # the four flows of frames 1-4 at once, not one after another


def test_openmp_threads_wait_passively_unless_the_user_chose():
    import subprocess
    import sys

    def policy(env):
        code = "import vidstyle, os; print(os.environ['OMP_WAIT_POLICY'])"
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True).stdout.strip()

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert policy(env) == "PASSIVE"
    assert policy({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"


def test_the_engine_never_raises_a_chosen_thread_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        FastEngine(InvertNetwork(), torch.device("cpu"))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
