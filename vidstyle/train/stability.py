"""Make a shipped network steady by itself: fine-tune it against its own output, under
small motions and noise (Gupta et al. 2017, "Characterizing and Improving Stability in
Neural Style Transfer"; Gao et al. 2018, ReCoNet).

Why: the flicker filter follows an estimated flow, and DIS's 0.3-2 px of error on
a network whose texture changes with every sub-pixel shift of its input is what the filter
cannot absorb (docs/temporal.md: with the exact flow the same filter's median ratio is
0.53, with DIS 20.36). A network whose output moves with its input, instead of repainting,
leaves the filter less to hide and the flow's error less to multiply.

Each step, per crop ``x`` of the training data:

    a = x + noise                       # what the network sees in one frame
    b = move(x) + noise'                # the next frame: a small known motion, new noise
    loss = |S(a) - T(x)|                                # keep the picture (teacher T)
         + texture_weight   * Gram error(S(a), T(x))    # keep its texture (VGG relu1-3)
         + stability_weight * |S(b) - move(S(a))|^2     # move with the input

``T`` is the network as shipped, frozen; ``S`` starts as a copy of it. ``move`` is a random
sub-pixel translation, rotation and zoom applied with `F.grid_sample`, and applied to the
output with exactly the same call, so the motion is known exactly: no flow estimate and its
error enter the loss (the temporal loss of `loop.py` uses DIS on real pairs, whose error
is the very thing this is about). Pixels the motion brings in from outside the crop, and a
margin where the network's padding differs, are left out.

For the 26-style network every step draws one of its presets, so all 26 stay trained; the
shared convolutions see every step. Given a subset of the presets (`presets`), only those
presets' own parameters train: their rows of every conditional norm's scale and shift
(Dumoulin et al. 2017). The shared convolutions stay frozen, so every other preset is left
bit for bit as it was. Drawn from all 26, a preset gets a 26th of the steps; its own rows
get nothing in the other 25 (round 13: docs/temporal.md, "One preset's own parameters").

A Johnson network (one style) is fine-tuned the same way, through the straight-through
clamp `vidstyle train` uses.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vidstyle.errors import OutputError, SettingsError, StyleError, WeightsError
from vidstyle.losses import gram_matrix, style_loss
from vidstyle.networks.conditional import NUM_STYLES, MultiStyleNet, one_hot_style
from vidstyle.networks.johnson import JohnsonNet
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.resolve import load_multistyle
from vidstyle.styles.weights import load_into, read_safetensors, write_safetensors
from vidstyle.train.data import TrainingData
from vidstyle.train.objective import UnclampedOutput
from vidstyle.train.settings import TrainStep
from vidstyle.train.step import take_step

FORMAT_NAMES = {"conditional": "vidstyle-multistyle26", "johnson": "vidstyle-johnson"}
# What is stabilized unless told otherwise: Magenta's 26-style network as ported, not
# whatever `preset:N` runs by default (which may itself be an output of this module).
SOURCE_NETWORK = "multistyle26"
# Layers whose Gram matrices hold the fine texture: the strokes a pixel loss would let
# blur while the stability term pulls toward a motion-consistent mean.
TEXTURE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")


@dataclass
class StabilitySettings:
    steps: int = 600
    size: int = 256  # square crops, pixels (a multiple of 4)
    batch: int = 2
    learning_rate: float = 1e-4  # small: start from a network that already paints well
    stability_weight: float = 10.0
    texture_weight: float = 0.05
    # Per-pixel Gaussian noise, standard deviation drawn up to this (0-1 scale): 0.02 is
    # about 5 grey levels. The corpus's grain clip keeps 3.5 after encoding (Immerkaer's
    # estimate; tools/build_corpus.py), real camera footage 1-1.6 (vtest, box).
    max_noise: float = 0.02
    # Each crop's brightness scaled by a gain drawn from [1 - max_darken, 1]: dim footage
    # (the corpus's lowlight clip is at gain 0.35) is where every network flickers most.
    # 0 (the default) leaves the crops, and the random stream, as they were.
    max_darken: float = 0.0
    max_shift: float = 2.0  # px; DIS's error on the corpus is 0.3-2 px (docs/temporal.md)
    max_rotation: float = 1.0  # degrees
    max_zoom: float = 0.02  # relative
    margin: int = 8  # px of the crop's border left out of the stability term
    seed: int = 0
    threads: int | None = None
    checkpoint_every: int = 100
    presets: tuple[int, ...] = field(default_factory=lambda: tuple(range(NUM_STYLES)))

    def validate(self) -> StabilitySettings:
        if self.steps < 1 or self.batch < 1 or self.checkpoint_every < 1:
            raise SettingsError("steps, batch and checkpoint interval must be at least 1")
        if self.size < 64 or self.size % MultiStyleNet.size_multiple:
            raise SettingsError(f"size must be a multiple of 4 and at least 64, got {self.size}")
        if min(self.stability_weight, self.texture_weight, self.max_noise, self.max_shift,
               self.max_rotation, self.max_zoom) < 0 or self.learning_rate <= 0:
            raise SettingsError("weights and motion limits must be >= 0, the learning rate > 0")
        if not 0 <= self.max_darken < 1:
            raise SettingsError(f"darken must lie in [0, 1), got {self.max_darken}")
        if not self.presets or not all(0 <= p < NUM_STYLES for p in self.presets):
            raise SettingsError(f"presets must lie in 0..{NUM_STYLES - 1}")
        return self


def random_motion(count: int, size: int, settings: StabilitySettings,
                  generator: torch.Generator) -> torch.Tensor:
    """``count x 2 x 3`` affine matrices (`F.affine_grid`'s normalised coordinates) of a
    random translation, rotation and zoom within the settings' limits."""
    def uniform(limit: float) -> torch.Tensor:
        return (torch.rand(count, generator=generator) * 2 - 1) * limit

    angle = uniform(math.radians(settings.max_rotation))
    zoom = 1 + uniform(settings.max_zoom)
    # Pixels to normalised units: the crop spans 2 units over `size` pixels.
    shift_x = uniform(settings.max_shift) * 2 / size
    shift_y = uniform(settings.max_shift) * 2 / size
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    return torch.stack([torch.stack([cos, -sin, shift_x], 1),
                        torch.stack([sin, cos, shift_y], 1)], 1)


def move(images: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """`images` resampled along `motion` (bilinear; outside the frame reads zero)."""
    grid = F.affine_grid(motion.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


def valid_mask(motion: torch.Tensor, size: int, margin: int) -> torch.Tensor:
    """``N x 1 x H x W``: 1 where the moved crop reads from inside the original, at least
    `margin` pixels from both crops' borders."""
    ones = torch.ones(motion.shape[0], 1, size, size)
    inner = torch.zeros_like(ones)
    inner[..., margin:size - margin, margin:size - margin] = 1
    moved = move(inner, motion)
    return (moved > 0.999).float() * inner


def darken(images: torch.Tensor, max_darken: float, generator: torch.Generator) -> torch.Tensor:
    if max_darken == 0:
        return images
    gain = 1 - torch.rand(images.shape[0], 1, 1, 1, generator=generator) * max_darken
    return images * gain


def add_noise(images: torch.Tensor, max_noise: float, generator: torch.Generator) -> torch.Tensor:
    sigma = torch.rand(images.shape[0], 1, 1, 1, generator=generator) * max_noise
    noise = torch.randn(images.shape, generator=generator) * sigma
    return (images + noise).clamp(0, 1)


class StabilityLoss:
    """The three terms of the module docstring, weighted."""

    def __init__(self, settings: StabilitySettings, vgg=None) -> None:
        self.settings = settings
        self.vgg = vgg

    def __call__(self, student: Callable[[torch.Tensor], torch.Tensor], teacher: nn.Module,
                 crops: torch.Tensor,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
        s = self.settings
        crops = darken(crops, s.max_darken, generator)
        motion = random_motion(crops.shape[0], crops.shape[-1], s, generator)
        first = add_noise(crops, s.max_noise, generator)
        second = add_noise(move(crops, motion), s.max_noise, generator)
        with torch.no_grad():
            target = teacher(crops)
        outputs = student(torch.cat([first, second]))
        out_first, out_second = outputs[: len(crops)], outputs[len(crops):]
        mask = valid_mask(motion, crops.shape[-1], s.margin)
        moved = move(out_first, motion)
        squared = (out_second - moved).pow(2) * mask
        terms = {
            "picture": (out_first - target).abs().mean(),
            "stability": s.stability_weight * squared.sum() / (3 * mask.sum()).clamp(min=1),
        }
        if self.vgg is not None and s.texture_weight > 0:
            terms["texture"] = s.texture_weight * self.texture(out_first, target)
        return terms

    def texture(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        layers = list(TEXTURE_LAYERS)
        with torch.no_grad():
            wanted = {k: gram_matrix(v) for k, v in self.vgg.features(target, layers).items()}
        grams = {k: gram_matrix(v) for k, v in self.vgg.features(output, layers).items()}
        return style_loss(grams, wanted)


@dataclass
class StabilityResult:
    output: Path
    steps: int
    seconds: float
    losses: list[dict[str, float]]


class Candidate:
    """What the loop needs of a network family: the frozen teacher, the student, how the
    student is called with a gradient, which parameters train, and how it is written."""

    family = ""

    def __init__(self, teacher: nn.Module, student: nn.Module) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.student = student.train()

    def before_step(self, choose: random.Random, settings: StabilitySettings) -> None:
        """Pick what this step trains (a preset, for the 26-style network)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.student(images)

    def parameters(self) -> list[nn.Parameter]:
        return list(self.student.parameters())

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().float().cpu() for k, v in self.student.state_dict().items()}


class MultistyleCandidate(Candidate):
    family = "conditional"

    def __init__(self, teacher: nn.Module, student: nn.Module) -> None:
        super().__init__(teacher, student)
        self.own_rows: tuple[int, ...] | None = None

    def before_step(self, choose: random.Random, settings: StabilitySettings) -> None:
        style = one_hot_style(choose.choice(settings.presets))
        self.teacher.set_style_weights(style)
        self.student.set_style_weights(style)

    def train_only(self, presets: tuple[int, ...]) -> None:
        """Train only these presets' norm rows; freeze the shared convolutions."""
        self.own_rows = tuple(sorted(set(presets)))

    def parameters(self) -> list[nn.Parameter]:
        if self.own_rows is None:
            return super().parameters()
        keep = torch.zeros(NUM_STYLES, 1)
        keep[list(self.own_rows)] = 1.0
        rows = []
        for name, parameter in self.student.named_parameters():
            if name.endswith((".norm.scale", ".norm.shift")):
                # Adam moves nothing whose gradient is always zero (its moments stay 0).
                parameter.register_hook(lambda grad: grad * keep.to(grad))
                rows.append(parameter)
            else:
                parameter.requires_grad_(False)
        return rows

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in super().state().items() if k != "style_weights"}


class JohnsonCandidate(Candidate):
    """`JohnsonNet` clamps its output; the loss reads it through the straight-through
    clamp of `objective.UnclampedOutput`, as `vidstyle train` does, so that overshooting
    pixels still get a gradient."""

    family = "johnson"

    def __init__(self, teacher: nn.Module, student: nn.Module) -> None:
        super().__init__(teacher, student)
        self.unclamped = UnclampedOutput(self.student)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.unclamped(self.student, images)


def candidate_for(network: str | Path, start: str | Path | None = None) -> Candidate:
    """The network to stabilize: a shipped 26-style network by catalogue name, a built-in
    Johnson style by name (``scream``), or a file of either kind."""
    from vidstyle.styles.catalogue import load_catalogue, shipped_tensors
    from vidstyle.styles.weights import read_johnson_weights

    catalogue = load_catalogue()
    if isinstance(network, str) and network in catalogue.networks:
        family = catalogue.networks[network].family
    elif isinstance(network, str) and network in catalogue.styles:
        network = catalogue.styles[network].network
        family = catalogue.networks[network].family
    else:
        network = Path(network)
        if not network.is_file():
            raise StyleError(f"{network}: no such network file, built-in style or network")
        family = "conditional" if is_multistyle_file(network) else "johnson"
    if family == "conditional":
        return MultistyleCandidate(load_multistyle(network),
                                   load_multistyle(Path(start) if start else network))

    def johnson(source: str | Path) -> JohnsonNet:
        state = (shipped_tensors(source, "network") if isinstance(source, str)
                 else read_johnson_weights(source))
        return load_into(JohnsonNet(), state, source)

    if family != "johnson":
        raise StyleError(f"{network}: only Johnson and 26-style networks can be stabilized "
                         "(a fitted style is fitted steady: vidstyle train --stability-weight)")
    return JohnsonCandidate(johnson(network), johnson(Path(start) if start else network))


def is_multistyle_file(path: Path) -> bool:
    try:
        state, _ = read_safetensors(path)
    except WeightsError:
        return False
    return any(key.endswith(".norm.scale") for key in state)


def stabilize(
    data: str | Path,
    output: str | Path,
    *,
    settings: StabilitySettings | None = None,
    network: str | Path = SOURCE_NETWORK,
    start: str | Path | None = None,
    on_step: Callable[[TrainStep], None] | None = None,
) -> StabilityResult:
    """Fine-tune `network` (see `candidate_for`) to move with its input, and write it to
    `output` (safetensors in the family's own keys, fp32) every `checkpoint_every` steps
    and at the end: ``--style preset:N@OUTPUT`` runs a 26-style result, ``--style OUTPUT``
    (or ``vidstyle styles add``) a Johnson one.

    The target picture is always `network`'s; `start` (an earlier output of this function)
    only sets where the weights begin, so a run continued in pieces never drifts from the
    look it is meant to keep."""
    settings = (settings or StabilitySettings()).validate()
    output = Path(output)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    choose = random.Random(settings.seed)
    candidate = candidate_for(network, start)
    if isinstance(candidate, MultistyleCandidate) and len(set(settings.presets)) < NUM_STYLES:
        candidate.train_only(settings.presets)
    dataset = TrainingData(data, settings.size, seed=settings.seed)
    vgg = load_vgg19() if settings.texture_weight > 0 else None
    loss = StabilityLoss(settings, vgg)
    optimizer = torch.optim.Adam(candidate.parameters(), lr=settings.learning_rate)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    for step in range(1, settings.steps + 1):
        candidate.before_step(choose, settings)
        terms = loss(candidate.forward, candidate.teacher, dataset.batch(settings.batch),
                     generator)
        values = take_step(optimizer, terms, step, "fine-tuning")
        history.append(values)
        written = None
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            write_stabilized(output, candidate, settings, step, network, start)
            written = output
        if on_step is not None:
            on_step(TrainStep(step, settings.steps, values, time.perf_counter() - started,
                              written))
    return StabilityResult(output, settings.steps, time.perf_counter() - started, history)


def write_stabilized(output: Path, candidate: Candidate, settings: StabilitySettings,
                     step: int, network: str | Path, start: str | Path | None) -> None:
    metadata = {
        "format": FORMAT_NAMES[candidate.family], "family": candidate.family,
        "steps": str(step), "teacher": Path(network).name,
        "start": Path(start).name if start else Path(network).name,
        "objective": (f"stability (Gupta et al. 2017): weight {settings.stability_weight:g}, "
                      f"texture {settings.texture_weight:g}, noise {settings.max_noise:g}, "
                      f"darken {settings.max_darken:g}, "
                      f"shift {settings.max_shift:g} px, size {settings.size}"),
    }
    if candidate.family == "conditional":
        metadata["presets"] = ",".join(map(str, sorted(set(settings.presets))))
    try:
        write_safetensors(output, candidate.state(), metadata)
    except OSError as exc:
        raise OutputError(output, f"cannot write the network ({exc.strerror or exc})") from None
