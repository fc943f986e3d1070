"""The feed-forward engine: a style network over batches of frames.

Per batch: host -> device (pinned, non-blocking on CUDA), uint8 -> float in [0, 1],
channels_last, optional downscale (`max_size`), reflect-pad to the network's multiple,
the network under autocast, crop, upscale back, optional temporal filter, -> uint8 -> host.
"""

from __future__ import annotations

import math
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.engines.base import EngineBase
from vidstyle.engines.compiled import CompiledNetwork, bucket_size
from vidstyle.engines.scale import default_style_scale, resize_to_working, trained_size_of
from vidstyle.images import enlarge_to_min_side

# Cores kept back from the network for decode, encode and the flow estimate: none, since
# OpenMP threads sleep instead of spinning (vidstyle/_openmp.py). With spinning threads one
# core had to be kept back: on a 2-core machine shared with five other jobs, two spinning
# network threads took 141-142 s where one took 35 s (docs/benchmarks.md, "Threads"); with
# passive waiting, two threads beat one both quiet and beside two busy processes.
PIPELINE_CORES = 0

# Reflect padding is the least visible at the border (no dark frame edge, no smear); it
# needs the pad to be smaller than the side, so tiny frames fall back to replicate.

# The smallest side every shipped network runs on: Johnson's first layer reflect-pads by
# 4 pixels, and after three stride-2 stages (the arbitrary network) its reflect-pad of 1
# needs 2 pixels left: 32 covers both. Smaller frames (1x1, 3x5, 1920x2) are enlarged to
# it and brought back to their exact size.
MIN_NETWORK_SIDE = 32


class FastEngine(EngineBase):
    """Implements `vidstyle.engines.base.Engine` for any style network."""

    def __init__(
        self,
        network: nn.Module,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        *,
        max_size: int | None = None,
        temporal_filter=None,
        compile: bool | str = False,
        style_scale: float | None = None,
    ) -> None:
        self.device = device
        self.dtype = dtype
        self.max_size = max_size
        self.temporal_filter = temporal_filter
        # --style-scale (vidstyle.engines.scale): None runs the network at the network's
        # default (`default_style_scale`: a fitted style's working size, else the frame's).
        self.requested_scale = style_scale
        self.style_scale = style_scale
        if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
            # Only ever fewer: a caller that chose a count (Ray's per-task CPUs) keeps it.
            torch.set_num_threads(min(torch.get_num_threads(), network_threads()))
        self.use_network(network)
        # Compiling fuses the elementwise passes between convolutions (norm, ReLU, padding,
        # residual adds), where these networks spend most of their time on a CPU; the
        # packages are kept per machine (engines/compiled/), so only a first run pays.
        # Networks swapped in later (a style schedule, `use_network`) run eagerly: each
        # blend step would be a package of its own.
        self.compiled = None
        if should_compile(compile, device):
            # "auto" never waits for a compiler: a missing package is built in the background.
            self.compiled = CompiledNetwork(self.network, dtype, background=compile == "auto")
            self.multiple = bucket_size(1, 1, self.multiple)[0]
        self.pin = device.type == "cuda"
        # A filter whose flow needs only the input frames (FlowFilter.estimate) gets it from
        # a helper thread while the network runs: OpenCV's DIS releases the GIL, so on the
        # GPU the flow is free and on a CPU it overlaps the network's own threads.
        self._flow_pool: ThreadPoolExecutor | None = None
        self._last_content: np.ndarray | None = None
        if hasattr(temporal_filter, "estimate"):
            self._flow_pool = ThreadPoolExecutor(flow_workers(),
                                                 thread_name_prefix="vidstyle-flow")

    def use_network(self, network: nn.Module) -> None:
        """Run `network` from the next batch on, keeping the temporal state (a style
        schedule changes networks mid-video, vidstyle.engines.scheduled)."""
        self.compiled = None  # a compiled package belongs to the network it was built from
        self.multiple = int(getattr(network, "size_multiple", 1))
        self.trained_size = trained_size_of(network)
        self.style_scale = (self.requested_scale if self.requested_scale is not None
                            else default_style_scale(network))
        self.network = network.to(self.device).eval()
        if self.device.type in ("cpu", "cuda"):
            # NHWC lets oneDNN/cuDNN pick their fastest convolution kernels.
            self.network = self.network.to(memory_format=torch.channels_last)

    def reset(self) -> None:
        self._last_content = None
        if self.temporal_filter is not None:
            self.temporal_filter.reset()

    def close(self) -> None:
        if self._flow_pool is not None:
            self._flow_pool.shutdown(wait=False, cancel_futures=True)

    @torch.inference_mode()
    def stylize(self, frames: torch.Tensor) -> torch.Tensor:
        if self.pin:
            frames = frames.pin_memory()
        contents = frames.numpy() if self.temporal_filter is not None else None
        estimates = self._start_flow(contents)
        x = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        styled = self.stylize_float(x)
        if contents is not None:
            styled = self._apply_temporal(contents, styled, estimates)
        out = styled.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
        out = out.permute(0, 2, 3, 1)
        if out.device.type != "cpu":
            out = out.to("cpu", non_blocking=self.pin)
            if self.pin:
                torch.cuda.current_stream(self.device).synchronize()
        return out.contiguous()

    def stylize_float(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a float ``N x 3 x H x W`` batch in [0, 1], at the input's size."""
        height, width = x.shape[-2:]
        if self.style_scale is not None:
            x = resize_to_working(x, self.style_scale, self.trained_size)
        x = downscale_to_fit(x, self.max_size)
        x, factors = enlarge_to_min_side(x, MIN_NETWORK_SIDE)
        padded, pads = pad_to_multiple(x, self.multiple)
        padded = padded.contiguous(memory_format=torch.channels_last)
        if self.compiled is not None:
            y = self.compiled(padded)
        else:
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=self._autocast):
                y = self.network(padded)
        y = crop(y.float(), pads, x.shape[-2:])
        if factors != (1, 1):
            y = F.avg_pool2d(y, factors)  # the exact inverse of the nearest enlargement
        if y.shape[-2:] != (height, width):
            y = F.interpolate(y, size=(height, width), mode="bicubic", align_corners=False)
        return y

    @property
    def _autocast(self) -> bool:
        return self.dtype != torch.float32

    def _start_flow(self, contents: np.ndarray | None) -> list[Future | None]:
        """Submit the flow of each frame against its predecessor (None: no usable one)."""
        if contents is None or self._flow_pool is None:
            return [None] * (0 if contents is None else len(contents))
        futures: list[Future | None] = []
        for content in contents:
            previous = self._last_content
            same_size = previous is not None and previous.shape == content.shape
            estimate = self.temporal_filter.estimate
            futures.append(self._flow_pool.submit(estimate, previous, content) if same_size
                           else None)
            self._last_content = content
        return futures

    def _apply_temporal(self, contents: np.ndarray, styled: torch.Tensor,
                        estimates: list[Future | None]) -> torch.Tensor:
        filtered = []
        for content, image, future in zip(contents, styled, estimates, strict=True):
            if future is None:
                filtered.append(self.temporal_filter(content, image))
            else:
                filtered.append(self.temporal_filter(content, image, future.result()))
        return torch.stack(filtered)


def should_compile(setting: bool | str, device: torch.device) -> bool:
    """`compile` as the settings give it: True/"on", False/"off", or "auto", which compiles
    (once per machine) on CPUs and CUDA GPUs where a C++ compiler is there to build with."""
    if setting in (True, "on"):
        return True
    if setting in (False, "off", None):
        return False
    if setting != "auto":
        raise ValueError(f"compile must be on, off or auto, not {setting!r}")
    return device.type in ("cpu", "cuda") and has_cxx_compiler()


def has_cxx_compiler() -> bool:
    """Inductor builds its packages with the C++ compiler in $CXX, else c++/g++/clang++."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["c++", "g++", "clang++"]
    return any(shutil.which(name) for name in names)


def flow_workers(cores: int | None = None) -> int:
    """Threads for the temporal filter's flow: half the cores this process may use, at
    least one. Each frame's flow needs only the input frames, so the flows of a batch run
    side by side instead of one after another; with one worker, a GPU batch of four 1080p
    frames waited for four flows in a row, about 100 ms of one core each
    (docs/benchmarks.md, round 6). On a 2-core machine: one, as before."""
    return max(1, available_cores(cores) // 2)


def available_cores(cores: int | None = None) -> int:
    """The cores this process may use (its affinity: a `taskset` or container limit)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


def network_threads(cores: int | None = None) -> int:
    """Intra-op threads for the network on a CPU: every core this process may use (its
    affinity: a `taskset` or container limit) less `PIPELINE_CORES`, and at least one."""
    return max(1, available_cores(cores) - PIPELINE_CORES)


def downscale_to_fit(x: torch.Tensor, max_size: int | None) -> torch.Tensor:
    """Shrink so the long side is at most `max_size` (antialiased); never enlarge."""
    height, width = x.shape[-2:]
    if not max_size or max(height, width) <= max_size:
        return x
    scale = max_size / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right so H and W divide by `multiple`; return the pads for `crop`."""
    height, width = x.shape[-2:]
    pad_h = (math.ceil(height / multiple) * multiple - height) if multiple > 1 else 0
    pad_w = (math.ceil(width / multiple) * multiple - width) if multiple > 1 else 0
    if not pad_h and not pad_w:
        return x, (0, 0)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (pad_h, pad_w)


def crop(y: torch.Tensor, pads: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Undo `pad_to_multiple` (the network may return the padded size)."""
    return y[..., : size[0], : size[1]]
