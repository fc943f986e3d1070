"""Large frames in tiles: Johnson's network at a size that stays in the processor's cache.

    python -m benchmarks.tiling quality CLIP... [--size 1280x720] [--frames 100]
        [--style scream] [--halo 16] [--stats anchor|previous|half|own] [--limit 0.05]
    python -m benchmarks.tiling speed [--size 1920x1080] [--halo 16] [--rounds 3]

Johnson's network (the named styles) ran at 81% of this CPU's bf16 matmul ceiling at
640x360 but 57-59% at 1920x1080 (docs/benchmarks.md, round 6): at 1080p each 128-channel
activation is 33 MB, more than the cache holds. Issue 16 asks whether tiles win. A frame is
cut into a grid of tiles of about `TILE` pixels, each with `HALO` pixels of its neighbours
around it, run one at a time; only each tile's interior is kept. Instance norm wants the
statistics of the whole frame, which no tile has, so each tile is normalized with given
statistics (`StatisticsKernel`) and gathers those of its own interior on the way.

Where the statistics come from (`--stats`):

* `own`: the frame's own, measured by an untiled pass: what the halo alone costs.
* `previous`: the previous frame's own (an untiled pass per frame: a bound, not a plan).
* `half`: an untiled pass over the frame at half size.
* `anchor` (the scheme a product could run): those of the last frame run whole. Each
  tiled frame's gathered statistics are compared with them (`drift`); past `--limit`
  (a cut, a flash, the camera moved on) the frame is run again whole, which gives the new
  anchor. The gathered statistics themselves cannot be carried to the next frame: a
  layer's gathered statistics belong to the normalization its upstream layers had, the
  error grows from frame to frame, and 40 of megamind's first 100 frames (720p, scream)
  had to be run whole that way against 8 with the anchor.

`quality` reports, per clip, the worst and median PSNR of the tiled frames against the
untiled network at the same precision (bf16), and how many frames ran whole. `speed`
times model-only, bf16, `torch.compile`d: the whole frame against its tiles (kernel with
statistics in, sums out), alternating, with the matmul ceiling of the same run.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.ceiling import matmul_gflops
from vidstyle.engines.compiled import psnr
from vidstyle.networks.johnson import JohnsonNet
from vidstyle.networks.norm import InstanceNorm

# Interior of a tile (height, width): the size at which the network ran at 81% of the
# ceiling. Frames are split into ceil(H / 360) x ceil(W / 640) tiles of equal size.
TILE = (360, 640)
# Neighbouring pixels around each tile (a multiple of 4: the network's two stride-2 steps).
HALO = 16
# How far a frame's gathered statistics may be from those it was normalized with before it
# is run whole (`drift`). On 20 frame pairs 9-40 frames apart or from different clips
# (720p, scream), every pair at most 0.05 apart came out at least 43.4 dB from the untiled
# output, one at 0.13 at 38.4 dB; consecutive frames were 0.004-0.027 apart. At 0.08, cup's
# worst tiled frame fell to 38.3 dB.
DRIFT_LIMIT = 0.05

# ``kernel(tile, statistics, interior) -> (styled tile, gathered sums)``.
Kernel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class StatisticsKernel(nn.Module):
    """Johnson's network on one tile, each instance norm with given statistics.

    `statistics` is ``L x 2 x C`` float32: per norm layer (`JohnsonNet.norm_layers`) the
    mean and 1 / std of each channel, zero-padded to the widest layer. `interior` is a
    ``1 x 1 x H x W`` mask, 1 on the pixels this tile owns. Returns the styled tile and,
    ``L x 3 x C``, the sums over the interior of ``y - mean`` and ``(y - mean)^2`` of each
    layer's input and the interior's pixel count at that layer, which `frame_statistics`
    turns into the frame's statistics. Taken
    about the mean in use, the sums do not cancel (the one-pass variance of
    `vidstyle.networks.norm` lost all precision when a channel's mean was large against
    its spread).
    """

    def __init__(self, network: JohnsonNet) -> None:
        super().__init__()
        self.network = network
        self.size_multiple = network.size_multiple

    def forward(self, x: torch.Tensor, statistics: torch.Tensor,
                interior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        layers = {id(norm): i for i, norm in enumerate(self.network.norm_layers())}
        width = statistics.shape[-1]
        gathered: list[torch.Tensor] = []

        def normalize(norm: InstanceNorm, y: torch.Tensor) -> torch.Tensor:
            index, channels = layers[id(norm)], y.shape[1]
            mean = statistics[index, 0, :channels].reshape(1, channels, 1, 1)
            inverse_std = statistics[index, 1, :channels].reshape(1, channels, 1, 1)
            step = x.shape[-1] // y.shape[-1]  # 1, 2 or 4: the layer's resolution
            mask = interior[:, :, ::step, ::step]
            centred = y.float() - mean
            sums = torch.stack(((centred * mask).sum((0, 2, 3)),
                                (centred * centred * mask).sum((0, 2, 3)),
                                mask.sum().expand(channels)))
            gathered.append(F.pad(sums, (0, width - channels)))
            scale = inverse_std * norm.weight.reshape(1, channels, 1, 1)
            return (centred * scale + norm.bias.reshape(1, channels, 1, 1)).to(y.dtype)

        return self.network.transform(x, normalize), torch.stack(gathered)


def measured_statistics(network: JohnsonNet, x: torch.Tensor) -> tuple[torch.Tensor,
                                                                       torch.Tensor]:
    """The whole-frame output of `network` (its own instance norm) and the statistics it
    normalized with, in `StatisticsKernel`'s layout."""
    layers = network.norm_layers()
    width = max(norm.weight.shape[0] for norm in layers)
    recorded: list[torch.Tensor] = []

    def normalize(norm: InstanceNorm, y: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(y.float(), dim=(0, 2, 3), unbiased=False)
        recorded.append(F.pad(torch.stack((mean, torch.rsqrt(var + norm.eps))),
                              (0, width - mean.shape[0])))
        return norm(y)

    return network.transform(x, normalize), torch.stack(recorded)


def frame_statistics(used: torch.Tensor, gathered: torch.Tensor, eps: float) -> torch.Tensor:
    """The statistics (``L x 2 x C``) that a frame's tile sums (``L x 3 x C``, summed over
    its tiles) give, the sums having been taken about the means of `used`."""
    counts = gathered[:, 2].clamp(min=1.0)
    shift = gathered[:, 0] / counts
    var = (gathered[:, 1] / counts - shift.square()).clamp(min=0.0)
    return torch.stack((used[:, 0] + shift, torch.rsqrt(var + eps)), dim=1)


def drift(used: torch.Tensor, measured: torch.Tensor, channels: list[int]) -> float:
    """How far `measured` statistics are from `used` ones: per layer, the mean over its
    channels of |change of mean| / std + |change of std| / std; the worst layer."""
    worst = 0.0
    for index, count in enumerate(channels):
        old_mean, old_inverse = used[index, 0, :count], used[index, 1, :count]
        new_mean, new_inverse = measured[index, 0, :count], measured[index, 1, :count]
        change = ((new_mean - old_mean).abs() * old_inverse
                  + (old_inverse / new_inverse - 1.0).abs())
        worst = max(worst, float(change.mean()))
    return worst


def tile_grid(height: int, width: int, tile: tuple[int, int] = TILE, halo: int = HALO,
              multiple: int = 4) -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """The tile size (with halo) and, per tile, (top, left) of the tile in the frame and
    (top, left) of its interior. Interiors are equal, multiples of `multiple`, and cover
    the frame once; tiles at the border are moved inwards to stay in the frame."""
    rows, cols = math.ceil(height / tile[0]), math.ceil(width / tile[1])
    inner_h = -(-math.ceil(height / rows) // multiple) * multiple
    inner_w = -(-math.ceil(width / cols) // multiple) * multiple
    size = (min(height, inner_h + 2 * halo), min(width, inner_w + 2 * halo))
    tiles = []
    for r in range(rows):
        for c in range(cols):
            y0, x0 = r * inner_h, c * inner_w
            top = min(max(0, y0 - halo), height - size[0])
            left = min(max(0, x0 - halo), width - size[1])
            tiles.append((top, left, y0, x0))
    return (inner_h, inner_w, *size), tiles


class TiledNetwork:
    """Johnson's network over ``N x 3 x H x W`` frames of one video, in order, in tiles,
    normalized with the anchor statistics (module docstring). `kernel` runs one tile
    (default: `StatisticsKernel` eagerly under autocast to `dtype`); `reset()` forgets the
    statistics (a new video)."""

    def __init__(self, network: JohnsonNet, dtype: torch.dtype = torch.float32, *,
                 kernel: Kernel | None = None, tile: tuple[int, int] = TILE,
                 halo: int = HALO, limit: float = DRIFT_LIMIT) -> None:
        self.network = network
        self.limit = limit
        self.dtype = dtype
        self.eager_kernel = StatisticsKernel(network)
        self.kernel = self._eager if kernel is None else kernel
        self.tile, self.halo = tile, halo
        self.channels = [norm.weight.shape[0] for norm in network.norm_layers()]
        self.eps = network.norm_layers()[0].eps
        self.statistics: torch.Tensor | None = None
        self.shape: tuple[int, ...] | None = None
        self.whole_frames = 0  # frames run whole: first ones, cuts
        self.passes = 0  # tiled passes run
        self.last_drift = math.nan  # of the last tiled pass

    def reset(self) -> None:
        self.statistics = None
        self.shape = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.frame(x[i : i + 1]) for i in range(x.shape[0])])

    def frame(self, x: torch.Tensor) -> torch.Tensor:
        if self.statistics is None or self.shape != tuple(x.shape):
            return self.whole(x)
        out, gathered = self.tiled(x, self.statistics)
        self.last_drift = drift(self.statistics, gathered, self.channels)
        # A NaN drift (statistics of a black frame overflowing) fails too.
        return out if self.last_drift <= self.limit else self.whole(x)

    def whole(self, x: torch.Tensor) -> torch.Tensor:
        """The frame untiled, its statistics measured: the new anchor."""
        self.whole_frames += 1
        with torch.autocast(x.device.type, dtype=self.dtype,
                            enabled=self.dtype != torch.float32):
            out, statistics = measured_statistics(self.network, x)
        self.statistics, self.shape = statistics, tuple(x.shape)
        return out.float()

    def tiled(self, x: torch.Tensor, statistics: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The frame in tiles normalized with `statistics`, and the statistics it gathered."""
        self.passes += 1
        height, width = x.shape[-2:]
        (inner_h, inner_w, tile_h, tile_w), tiles = tile_grid(height, width, self.tile,
                                                              self.halo)
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        total = 0.0
        for top, left, y0, x0 in tiles:
            rows = slice(y0 - top, min(y0 + inner_h, height) - top)
            cols = slice(x0 - left, min(x0 + inner_w, width) - left)
            interior = torch.zeros(1, 1, tile_h, tile_w, device=x.device)
            interior[:, :, rows, cols] = 1.0
            piece = x[:, :, top : top + tile_h, left : left + tile_w]
            styled, sums = self.kernel(piece, statistics, interior)
            out[:, :, y0 : y0 + rows.stop - rows.start, x0 : x0 + cols.stop - cols.start] = (
                styled[:, :, rows, cols])
            total = total + sums
        return out, frame_statistics(statistics, total, self.eps)

    def _eager(self, piece, statistics, interior):
        with torch.autocast(piece.device.type, dtype=self.dtype,
                            enabled=self.dtype != torch.float32):
            styled, sums = self.eager_kernel(piece, statistics, interior)
        return styled.float(), sums


def read_frames(clip: str, count: int, size: tuple[int, int]) -> list[torch.Tensor]:
    """The first `count` frames of `clip` as ``1 x 3 x H x W`` floats at `size` (w, h)."""
    capture, frames = cv2.VideoCapture(clip), []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        shrink = size[0] < frame.shape[1]
        frame = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), size,
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(255)
        frames.append(x.contiguous(memory_format=torch.channels_last))
    return frames


def johnson(style: str) -> JohnsonNet:
    """The named style's Johnson network (inside its colour and strength wrapper)."""
    from vidstyle.config import Settings
    from vidstyle.engines.factory import load_network

    network = load_network(Settings(style=style, device="cpu"), torch.device("cpu"))
    network = getattr(network, "network", network)
    if not isinstance(network, JohnsonNet):
        raise SystemExit(f"{style} is not a Johnson network")
    return network.eval()


def clip_quality(network: JohnsonNet, frames: list[torch.Tensor], stats: str, halo: int,
                 limit: float = DRIFT_LIMIT, dtype: torch.dtype = torch.bfloat16) -> dict:
    """PSNR of each tiled frame against the untiled network (same precision), and how many
    frames ran whole, with the statistics `stats` names (module docstring)."""
    tiled = TiledNetwork(network, dtype, halo=halo, limit=limit)
    scores, previous = [], None
    with torch.inference_mode():
        for x in frames:
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                reference, own = measured_statistics(network, x)
                half = F.interpolate(x, scale_factor=0.5, mode="area")
                given = {"own": own, "previous": previous,
                         "half": measured_statistics(network, half)[1] if stats == "half"
                         else None}
            if stats == "anchor":
                whole = tiled.whole_frames
                out = tiled.frame(x)
                if tiled.whole_frames == whole:
                    scores.append(psnr(out, reference.float()))
            elif given[stats] is not None:
                scores.append(psnr(tiled.tiled(x, given[stats])[0], reference.float()))
            previous = own
    return {"frames": len(frames), "whole": tiled.whole_frames,
            "tiled": len(scores), "worst": min(scores, default=math.nan),
            "median": float(np.median(scores)) if scores else math.nan}


def quality(args) -> None:
    network = johnson(args.style)
    width, height = (int(v) for v in args.size.split("x"))
    print(f"quality: {args.style}, {width}x{height}, tiles of {TILE[1]}x{TILE[0]} + "
          f"{args.halo} px halo, statistics: {args.stats}, drift limit {args.limit}, bf16")
    print("| clip | frames | run whole | tiled | worst PSNR (dB) | median PSNR (dB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for clip in args.clips:
        frames = read_frames(clip, args.frames, (width, height))
        row = clip_quality(network, frames, args.stats, args.halo, args.limit)
        print(f"| {clip.rsplit('/', 1)[-1]} | {row['frames']} | {row['whole']} | "
              f"{row['tiled']} | {row['worst']:.1f} | {row['median']:.1f} |", flush=True)


def speed(args) -> None:
    """Model only, bf16, compiled: the whole frame against its tiles, alternating."""
    network = johnson(args.style).to(memory_format=torch.channels_last)
    width, height = (int(v) for v in args.size.split("x"))
    x = torch.rand(1, 3, height, width).contiguous(memory_format=torch.channels_last)
    whole = torch.compile(network)
    tiled = TiledNetwork(network, torch.bfloat16, halo=args.halo,
                         kernel=torch.compile(StatisticsKernel(network)))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        tiled.whole(x)  # the anchor
        statistics = tiled.statistics
        runs = {"whole": lambda: whole(x), "tiled": lambda: tiled.tiled(x, statistics)}
        for run in runs.values():  # compile, warm up
            run()
            run()
        best = dict.fromkeys(runs, math.inf)
        for _ in range(args.rounds):
            for name, run in runs.items():
                started = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - started)
    ceiling = matmul_gflops(torch.bfloat16, torch.device("cpu"))
    print(f"speed: {args.style}, {width}x{height}, bf16, torch.compile, "
          f"{torch.get_num_threads()} threads, {args.halo} px halo; bf16 matmul ceiling "
          f"{ceiling:.0f} GFLOP/s")
    for name, seconds in best.items():
        print(f"{name}: {1 / seconds:.3f} frames/s")
    print(f"tiled / whole: {best['whole'] / best['tiled']:.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tiling")
    sub = parser.add_subparsers(dest="mode", required=True)
    q = sub.add_parser("quality")
    q.add_argument("clips", nargs="+")
    q.add_argument("--size", default="1280x720")
    q.add_argument("--frames", type=int, default=100)
    q.add_argument("--stats", default="anchor", choices=("anchor", "previous", "half", "own"))
    q.add_argument("--limit", type=float, default=DRIFT_LIMIT)
    s = sub.add_parser("speed")
    s.add_argument("--size", default="1920x1080")
    s.add_argument("--rounds", type=int, default=3)
    for command in (q, s):
        command.add_argument("--style", default="scream")
        command.add_argument("--halo", type=int, default=HALO)
    args = parser.parse_args(argv)
    import vidstyle  # noqa: F401 - the CLI's OpenMP policy (benchmarks/__init__ too)

    quality(args) if args.mode == "quality" else speed(args)


if __name__ == "__main__":
    main()
