"""The optimization engine: Gatys, Ecker & Bethge (2016), with Ruder et al.'s (2016) video terms.

The output image itself is the variable. Its VGG-19 features at `content_layer` are held
to the content frame's, its Gram matrices at `style_layers` to the style's, and total
variation keeps it smooth:

    L = content_weight * L_content + style_weight * L_style + tv_weight * L_tv
        (+ temporal_weight * L_temporal for video frames after the first)

(losses in `vidstyle.losses`: relative squared errors, so the weights are unitless).

Video (Ruder, Dosovitskiy & Brox 2016, "Artistic style transfer for videos"): each frame
after the first starts from the previous *output* warped along the optical flow of the
*input* frames (DIS flow, backward warping), and a temporal loss holds the reliable pixels
(forward-backward consistent, off motion boundaries) to that warped output:

    L_temporal = mean_x  c(x) * ||x - warp(out_{t-1})(x)||^2 ,  c = reliability mask

Regions the flow cannot explain (disocclusions) start from the current content instead.
Starting near the answer, a frame needs far fewer iterations (`frame_iterations`) than
the cold first frame (`iterations`), and the output does not flicker; numbers in
docs/gatys.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.config import GatysSettings, Settings
from vidstyle.engines.base import EngineBase, IterationCallback
from vidstyle.engines.fast import crop, pad_to_multiple
from vidstyle.errors import SettingsError
from vidstyle.images import (
    enlarge_to_min_side,
    resize_tensor,
    resize_tensor_long_side,
    to_pixels,
)
from vidstyle.losses import content_loss, gram_matrix, style_loss, total_variation
from vidstyle.networks.vgg import VGG19
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.targets import StyleTarget, style_target
from vidstyle.temporal.flow import FlowEstimator, flow_with_confidence, warp_backward_tensor

# The smallest side the losses are computed on: VGG-19 pools four times before conv5_1, so
# 32 px leaves it 2x2; smaller frames (1x1, 1920x2) are enlarged and pooled back exactly.
MIN_VGG_SIDE = 32
# L-BFGS keeps this many (step, gradient-change) pairs; each is two image-sized tensors, so
# 100 (torch's default) would cost ~550 MB at 360p. 20 converged as fast on our photos.
LBFGS_HISTORY = 20
# Adam's step in [0, 1] intensity units is learning_rate times this (0.02 is the usual
# pixel-space Adam rate, e.g. crowsonkb/style-transfer-pytorch), so learning_rate = 1
# suits both optimizers.
ADAM_BASE_STEP = 0.02
# Early stop: compare the loss with the one this many iterations earlier.
TOLERANCE_WINDOW = 10
# Coarse-to-fine never goes below this long side: VGG's 4 poolings leave 4 px at conv5.
MIN_SCALE_SIZE = 64
# White-noise init is seeded so that a job is reproducible.
NOISE_SEED = 0


# ---------------------------------------------------------------------------- optimization


@dataclass
class TemporalTerm:
    """The warped previous output and where it can be trusted (``1 x 1 x H x W`` in {0,1})."""

    warped: torch.Tensor
    mask: torch.Tensor
    weight: float


@dataclass
class OptimizationResult:
    image: torch.Tensor  # 1 x 3 x H x W in [0, 1], the best iterate
    losses: list[float] = field(default_factory=list)  # loss at each iterate, in order


class Objective:
    """The weighted loss of one frame: targets computed once, evaluated every iteration."""

    def __init__(
        self,
        content: torch.Tensor,
        target: StyleTarget,
        settings: GatysSettings,
        vgg: VGG19,
        temporal: TemporalTerm | None = None,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        self.vgg = vgg
        self.settings = settings
        self.style_weights = layer_weights(settings)
        self.style_targets = {layer: target.grams[layer] for layer in self.style_weights}
        self.layers = list(dict.fromkeys([*self.style_weights, settings.content_layer]))
        self.temporal = temporal
        self.autocast_dtype = autocast_dtype
        with torch.no_grad():
            self.content_target = self._features(content)[settings.content_layer]

    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        device_type = image.device.type
        enabled = self.autocast_dtype is not None
        with torch.autocast(device_type, dtype=self.autocast_dtype, enabled=enabled):
            return self.vgg.features(image, self.layers)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        s = self.settings
        features = self._features(image)
        grams = {layer: gram_matrix(features[layer]) for layer in self.style_weights}
        loss = s.content_weight * content_loss(features[s.content_layer], self.content_target)
        loss = loss + s.style_weight * style_loss(grams, self.style_targets, self.style_weights)
        if s.tv_weight:
            loss = loss + s.tv_weight * total_variation(image)
        if self.temporal is not None and self.temporal.weight:
            difference = (image - self.temporal.warped).pow(2) * self.temporal.mask
            loss = loss + self.temporal.weight * difference.mean()
        return loss


def layer_weights(settings: GatysSettings) -> dict[str, float]:
    if len(settings.style_layers) != len(settings.style_layer_weights):
        raise SettingsError(
            f"gatys.style_layers has {len(settings.style_layers)} entries but "
            f"gatys.style_layer_weights has {len(settings.style_layer_weights)}"
        )
    return dict(zip(settings.style_layers, settings.style_layer_weights, strict=True))


def optimize(
    objective: Objective,
    init: torch.Tensor,
    iterations: int,
    settings: GatysSettings,
    on_iteration: IterationCallback | None = None,
) -> OptimizationResult:
    """Minimise `objective` over the image from `init`, for at most `iterations` steps.

    Stops early once the loss improved by less than `settings.tolerance` (relative) over
    the last `TOLERANCE_WINDOW` iterations. Returns the lowest-loss iterate.
    """
    image = init.detach().clone(memory_format=torch.contiguous_format).clamp_(0.0, 1.0)
    image.requires_grad_(True)
    optimizer = make_optimizer(image, settings)
    result = OptimizationResult(image.detach().clone())
    best = math.inf
    last_loss = [math.inf]

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = objective(image)
        loss.backward()
        last_loss[0] = float(loss.detach())
        return loss

    for iteration in range(iterations):
        snapshot = image.detach().clone()
        optimizer.step(closure)
        loss = last_loss[0]  # the loss of `snapshot`, the iterate before this step
        if not math.isfinite(loss):
            break
        result.losses.append(loss)
        if loss < best:
            best, result.image = loss, snapshot
        if on_iteration is not None:
            on_iteration(iteration + 1, iterations, loss)
        with torch.no_grad():
            image.clamp_(0.0, 1.0)
        if converged(result.losses, settings.tolerance):
            break
    return result


def converged(losses: list[float], tolerance: float) -> bool:
    if tolerance <= 0 or len(losses) <= TOLERANCE_WINDOW:
        return False
    earlier, now = losses[-1 - TOLERANCE_WINDOW], losses[-1]
    return (earlier - now) <= tolerance * abs(earlier)


def make_optimizer(image: torch.Tensor, settings: GatysSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "lbfgs":
        # One iteration per step() call (torch keeps the curvature history across calls), so
        # that we can report progress and stop early between iterations.
        return torch.optim.LBFGS(
            [image], lr=settings.learning_rate, max_iter=1, history_size=LBFGS_HISTORY,
            tolerance_grad=0.0, tolerance_change=0.0,
        )
    if settings.optimizer == "adam":
        return torch.optim.Adam([image], lr=settings.learning_rate * ADAM_BASE_STEP)
    raise SettingsError(f"unknown gatys.optimizer {settings.optimizer!r}: choose lbfgs or adam")


def initial_image(content: torch.Tensor, how: str) -> torch.Tensor:
    """`content`: start from the frame (Ruder et al.'s choice for video; keeps structure);
    `noise`: white noise, as Gatys et al. (seeded: reproducible)."""
    if how == "content":
        return content.clone()
    if how == "noise":
        generator = torch.Generator().manual_seed(NOISE_SEED)
        return torch.rand(content.shape, generator=generator).to(content.device, content.dtype)
    raise SettingsError(f"unknown gatys.init {how!r}: choose content or noise")


def scale_sizes(height: int, width: int, scales: int) -> list[tuple[int, int]]:
    """Coarse-to-fine sizes, halving the long side per scale, never below MIN_SCALE_SIZE."""
    sizes = []
    for level in reversed(range(max(scales, 1))):
        factor = 2.0**-level
        if level and max(height, width) * factor < MIN_SCALE_SIZE:
            continue
        sizes.append((max(1, round(height * factor)), max(1, round(width * factor))))
    return sizes


def stylize_image_gatys(
    content: torch.Tensor,
    target: StyleTarget,
    settings: GatysSettings,
    device: torch.device | str = "cpu",
    on_iteration: IterationCallback | None = None,
    init: torch.Tensor | None = None,
    *,
    vgg: VGG19 | None = None,
    iterations: int | None = None,
    temporal: TemporalTerm | None = None,
) -> torch.Tensor:
    """Stylize one ``1 x 3 x H x W`` RGB [0, 1] image; returns the same shape on `device`.

    `init` (same size) replaces `settings.init` as the starting image, e.g. a feed-forward
    network's output for the fast+gatys hybrid. With `settings.scales` > 1 the image is
    first optimised at lower resolutions and upsampled (coarse-to-fine), which spends the
    iterations that shape large structures where they are cheap.
    """
    return optimize_image(
        content, target, settings, device, on_iteration, init,
        vgg=vgg, iterations=iterations, temporal=temporal,
    ).image


def optimize_image(
    content: torch.Tensor,
    target: StyleTarget,
    settings: GatysSettings,
    device: torch.device | str = "cpu",
    on_iteration: IterationCallback | None = None,
    init: torch.Tensor | None = None,
    *,
    vgg: VGG19 | None = None,
    iterations: int | None = None,
    temporal: TemporalTerm | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> OptimizationResult:
    """`stylize_image_gatys` that also returns the loss of every iterate (finest scale)."""
    device = torch.device(device)
    vgg = vgg or load_vgg19(settings.loss_net, device)
    target = target.to(device)
    content = content.to(device, torch.float32)
    iterations = settings.iterations if iterations is None else iterations
    start = initial_image(content, settings.init) if init is None else init.to(content)
    # A warm start (temporal term) is already at full resolution: coarse scales would
    # throw its detail away.
    sizes = scale_sizes(*content.shape[-2:], 1 if temporal else settings.scales)
    result = OptimizationResult(start)
    for size in sizes:
        objective = Objective(resize_tensor(content, size), target, settings, vgg, temporal,
                              autocast_dtype)
        start = resize_tensor(result.image, size).clamp(0.0, 1.0)
        result = optimize(objective, start, iterations, settings, on_iteration)
    return result


# ---------------------------------------------------------------------------- video engine


class GatysEngine(EngineBase):
    """Implements `vidstyle.engines.base.Engine` by optimisation, one frame at a time.

    Frames depend on each other (warm start, temporal loss), so they run in order; the
    batch dimension is walked, not vectorised. What can be shared is: the VGG and the
    style Grams (once per engine), the content features (once per frame).
    """

    def __init__(
        self,
        settings: GatysSettings,
        style: StyleTarget,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        on_iteration: IterationCallback | None = None,
        init_network: nn.Module | None = None,
        *,
        max_size: int | None = None,
    ) -> None:
        self.settings = settings
        self.device = torch.device(device)
        self.vgg = load_vgg19(settings.loss_net, self.device)
        self.style = style.to(self.device)
        self.on_iteration = on_iteration
        self.init_network = init_network.to(self.device).eval() if init_network else None
        self.max_size = max_size
        # VGG stays fp32 on the CPU (bf16 there is emulated on most CPUs and its rounding
        # slows L-BFGS); on GPUs a lower-precision autocast speeds the features up.
        self.autocast_dtype = (
            dtype if dtype != torch.float32 and self.device.type == "cuda" else None
        )
        self.flow = FlowEstimator("dis")
        self.previous_content: np.ndarray | None = None
        self.previous_output: torch.Tensor | None = None
        self.last_losses: list[float] = []  # per-iteration losses of the last frame

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        *,
        init_network: nn.Module | None = None,
    ) -> GatysEngine:
        """The engine for a job's `Settings`: the style resolved by `vidstyle.styles` (any
        spec with a picture behind it), VGG loaded, max_size kept."""
        knobs = settings.gatys
        vgg = load_vgg19(knobs.loss_net, device)
        target = style_target(settings.style, vgg, knobs.style_layers, knobs.style_size)
        return cls(knobs, target, device, dtype, None, init_network, max_size=settings.max_size)

    def reset(self) -> None:
        self.previous_content = None
        self.previous_output = None

    def stylize(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.stylize_frame(frame) for frame in frames])

    def stylize_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """One ``H x W x 3`` uint8 frame -> stylized, same shape, via the warm-start state."""
        height, width = frame.shape[:2]
        content = frame.permute(2, 0, 1)[None].to(self.device).float().div_(255.0)
        content, factors = enlarge_to_min_side(content, MIN_VGG_SIDE)
        full_size = tuple(content.shape[-2:])
        if self.max_size and max(full_size) > self.max_size:
            content = resize_tensor_long_side(content, self.max_size)
        pixels = to_pixels(content)  # what flow sees: the frame at working size
        init, temporal, iterations = self.plan_frame(content, pixels)
        result = optimize_image(
            content, self.style, self.settings, self.device, self.on_iteration, init,
            vgg=self.vgg, iterations=iterations, temporal=temporal,
            autocast_dtype=self.autocast_dtype,
        )
        self.last_losses = result.losses
        self.previous_content, self.previous_output = pixels, result.image
        output = resize_tensor(result.image, full_size).clamp(0.0, 1.0)
        if factors != (1, 1):
            output = F.avg_pool2d(output, factors)  # the exact inverse of the enlargement
        return output[0].mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).cpu()

    def plan_frame(
        self, content: torch.Tensor, pixels: np.ndarray
    ) -> tuple[torch.Tensor | None, TemporalTerm | None, int]:
        """(initial image or None for settings.init, temporal term, iterations)."""
        s = self.settings
        hybrid = self.init_network is not None
        fresh = self._network_output(content) if hybrid else None
        iterations = s.refine_iterations if hybrid else s.iterations
        has_past = (
            self.previous_output is not None
            and self.previous_content is not None
            and self.previous_content.shape == pixels.shape
        )
        if not has_past or s.warm_start == "none":
            return fresh, None, iterations
        warm_iterations = s.refine_iterations if hybrid else s.frame_iterations
        if s.warm_start == "previous":
            return self.previous_output, None, warm_iterations
        if s.warm_start != "flow":
            raise SettingsError(f"unknown gatys.warm_start {s.warm_start!r}")
        warped, mask = warp_previous(self.flow, self.previous_content, pixels,
                                     self.previous_output)
        # Disoccluded pixels have no past: they start from the current frame (or the
        # network's stylization of it), as in Ruder et al. 2016.
        fill = fresh if fresh is not None else initial_image(content, s.init)
        init = mask * warped + (1.0 - mask) * fill
        return init, TemporalTerm(warped, mask, s.temporal_weight), warm_iterations

    @torch.no_grad()
    def _network_output(self, content: torch.Tensor) -> torch.Tensor:
        multiple = int(getattr(self.init_network, "size_multiple", 1))
        padded, pads = pad_to_multiple(content, multiple)
        return crop(self.init_network(padded).float(), pads, content.shape[-2:]).clamp(0, 1)


def warp_previous(
    flow: FlowEstimator, previous: np.ndarray, current: np.ndarray, output: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The previous output warped onto the current frame, and the reliability mask
    (``1 x 1 x H x W``), from the flow between the INPUT frames."""
    estimate = flow_with_confidence(previous, current, flow, alpha=0.0)
    warped = warp_backward_tensor(output, estimate.flow)
    mask = torch.from_numpy(estimate.reliable).to(output.device)
    return warped, mask[None, None]

