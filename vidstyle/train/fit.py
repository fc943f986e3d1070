"""Fit a painting onto the shipped arbitrary-style network: a new style in minutes on a CPU.

Johnson et al. trained each style network for 40,000 steps on a GPU; on a 2-core CPU that
schedule takes about 40 hours, and a few thousand steps leave the network soft. Dumoulin
et al. (2017, sec. 3.4, fig. 6) learned a new painting instead by training only its own
instance-norm scale and shift per layer, the convolutions (trained at scale, on a GPU)
frozen. So `fit_style` optimises about 700 numbers, every instance norm's rows of Ghiasi
et al.'s arbitrary-style transformer (`vidstyle.networks.arbitrary`), starting from the
rows its style predictor guesses for the painting; the convolutions Magenta trained stay
as they are, and so does their crispness. (The 26-style network and the style vector
alone were measured too and lost: docs/training.md.)

Each step, per crop ``x`` of the fit set (photos and video frames the package ships),
dimmed by a random gain down to ``1 - max_darken`` (dark footage flickers worst):

    a = x + noise                    b = move(x) + noise'      (a small known motion)
    loss = content_weight   * content(VGG conv4_2 of S(a), of x)
         + style_weight     * Gram error(S(a), painting)          (conv1_1 .. conv5_1)
         + stability_weight * |S(b) - move(S(a))|^2               (Gupta et al. 2017)

Content and style are the Gatys engine's own terms (`vidstyle.losses`, same layers and
Gram targets), so `vidstyle eval` measures what the fit optimised. The stability term is
that of `vidstyle stabilize`: the motion is known exactly, so no flow estimate enters
the loss; it keeps the new rows as steady under small motions and noise as the rows the
network was stabilized with. The rows start from the preset whose output is closest to
the painting (fewest steps to go).

Checkpoints go to ``OUTPUT.fit/`` (the trainable rows, optimizer state, step, data
position and noise stream); `resume=True` continues from there and ends where the
uninterrupted run would have. The output is a fitted-style file (`vidstyle.styles.fitted`):
``vidstyle styles add NAME OUTPUT`` takes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from vidstyle.device import resolve_device, resolve_precision
from vidstyle.errors import InputError, SettingsError
from vidstyle.losses import content_loss, gram_matrix, style_loss
from vidstyle.networks.arbitrary import (
    ArbitraryTransformer,
    NormRows,
    prepare_style_image,
)
from vidstyle.styles.catalogue import shipped_tensors
from vidstyle.styles.fitted import BASE_NETWORK, BASE_ROLE, write_fitted_style
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.paintings import load_predictor, read_style_image
from vidstyle.styles.targets import StyleTarget, style_target_from_image
from vidstyle.styles.weights import WEIGHTS_DIR, load_into
from vidstyle.train.checkpoints import load_checkpoint, save_checkpoint
from vidstyle.train.data import TrainingData
from vidstyle.train.settings import TrainStep
from vidstyle.train.stability import (
    StabilitySettings,
    add_noise,
    darken,
    move,
    random_motion,
    valid_mask,
)
from vidstyle.train.step import autocast_for, take_step

# The fit set the package ships (tools/build_fit_set.py): crops of photos and video
# frames, none of them from the held-out pictures quality is measured on.
FIT_SET_DIR = Path(__file__).resolve().parent / "fitset"
FIT_SUFFIX = ".fit"
GENERATOR_FILE = "generator.pt"
# The Gatys engine's layers (config.GatysSettings): the fit optimises what eval measures.
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CONTENT_LAYER = "conv4_2"


@dataclass
class FitSettings:
    """Knobs of `fit_style`; the defaults are the measured ones (docs/training.md)."""

    steps: int = 300
    size: int = 192  # square crops, pixels (a multiple of 4)
    batch: int = 2
    # The painting's long side when its Grams are taken: bigger = bigger strokes.
    style_size: int = 512
    learning_rate: float = 0.02
    content_weight: float = 3.0
    style_weight: float = 1.0
    stability_weight: float = 100.0
    max_noise: float = 0.02  # as `vidstyle stabilize`
    max_shift: float = 2.0
    # Each crop's brightness scaled by a gain drawn from [1 - max_darken, 1], as
    # `vidstyle stabilize --darken`: dim footage is where flicker is worst (docs/temporal.md).
    max_darken: float = 0.7
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    threads: int | None = None
    checkpoint_every: int = 50
    style_name: str | None = None

    def validate(self) -> FitSettings:
        if self.steps < 1 or self.batch < 1 or self.checkpoint_every < 1:
            raise SettingsError("steps, batch and checkpoint interval must be at least 1")
        if self.size < 64 or self.size % ArbitraryTransformer.size_multiple:
            raise SettingsError(f"size must be a multiple of 4 and at least 64, got {self.size}")
        if self.style_size < 64:
            raise SettingsError(f"style size must be at least 64, got {self.style_size}")
        weights = (self.content_weight, self.style_weight, self.stability_weight,
                   self.max_noise, self.max_shift)
        if min(weights) < 0 or self.learning_rate <= 0:
            raise SettingsError("loss weights must be >= 0 and the learning rate > 0")
        if not 0 <= self.max_darken < 1:
            raise SettingsError(f"darken must lie in [0, 1), got {self.max_darken}")
        return self

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FitSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class FitResult:
    output: Path
    steps: int
    seconds: float
    losses: list[dict[str, float]]


def checkpoint_dir_for(output: Path) -> Path:
    return output.with_name(output.name + FIT_SUFFIX)


class FittedRows(nn.Module):
    """The arbitrary-style transformer, frozen, with one style's norm rows to train."""

    size_multiple = ArbitraryTransformer.size_multiple

    def __init__(self, transformer: ArbitraryTransformer, rows: NormRows) -> None:
        super().__init__()
        self.transformer = transformer.requires_grad_(False)
        self.keys = sorted(rows)
        # Parameter names cannot hold dots: the rows are indexed, `rows()` names them.
        self.values = nn.ParameterList(
            nn.Parameter(rows[key].detach().float().reshape(1, -1).clone()) for key in self.keys)

    def rows(self) -> NormRows:
        return dict(zip(self.keys, self.values, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transformer(x, self.rows())


def shipped_transformer() -> ArbitraryTransformer:
    file_name = WEIGHTS_DIR / "arbitrary_transform.safetensors"
    return load_into(ArbitraryTransformer(), shipped_tensors(BASE_NETWORK, BASE_ROLE), file_name)


@torch.no_grad()
def predicted_rows(transformer: ArbitraryTransformer, painting: Path) -> NormRows:
    """Where the fit starts: the rows of the style vector the predictor guesses."""
    vector = load_predictor()(prepare_style_image(read_style_image(painting)))
    return {k: v[0] for k, v in transformer.style_rows(vector).items()}


class FitLoss:
    """The three terms of the module docstring, weighted."""

    def __init__(self, vgg, target: StyleTarget, settings: FitSettings) -> None:
        self.vgg = vgg
        self.target = target
        self.settings = settings
        self.motion = StabilitySettings(max_shift=settings.max_shift)

    def __call__(self, network: nn.Module, crops: torch.Tensor,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
        s = self.settings
        crops = darken(crops, s.max_darken, generator)
        motion = random_motion(crops.shape[0], crops.shape[-1], self.motion, generator)
        first = add_noise(crops, s.max_noise, generator)
        second = add_noise(move(crops, motion), s.max_noise, generator)
        outputs = network(torch.cat([first, second]))
        out_first, out_second = outputs[: len(crops)], outputs[len(crops):]
        features = self.vgg.features(out_first, [CONTENT_LAYER, *STYLE_LAYERS])
        with torch.no_grad():
            wanted = self.vgg.features(crops, [CONTENT_LAYER])[CONTENT_LAYER]
        grams = {layer: gram_matrix(features[layer]) for layer in STYLE_LAYERS}
        mask = valid_mask(motion, crops.shape[-1], self.motion.margin).to(crops)
        squared = (out_second.float() - move(out_first.float(), motion)).pow(2) * mask
        return {
            "content": s.content_weight * content_loss(features[CONTENT_LAYER], wanted),
            "style": s.style_weight * style_loss(grams, self.target.grams),
            "stability": s.stability_weight * squared.sum() / (3 * mask.sum()).clamp(min=1),
        }


def fit_style(
    painting: str | Path,
    output: str | Path,
    *,
    settings: FitSettings | None = None,
    data: str | Path | None = None,
    on_step: Callable[[TrainStep], None] | None = None,
    resume: bool = False,
) -> FitResult:
    """Fit `painting` as a new style of the shipped arbitrary-style network.

    Writes the fitted style to `output` (see `vidstyle.styles.fitted`) at every checkpoint
    and at the end; `data` is a folder of photos/videos (default: the shipped fit set).
    With `resume`, continues from ``OUTPUT.fit/``. Raises InputError (unreadable data or
    checkpoint), StyleError (unreadable painting), SettingsError.
    """
    settings = (settings or FitSettings()).validate()
    painting, output = Path(painting), Path(output)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    dtype = resolve_precision(settings.precision, device)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)

    vgg = load_vgg19(device=device)
    target = style_target_from_image(painting, vgg, STYLE_LAYERS, settings.style_size)
    dataset = TrainingData(data or FIT_SET_DIR, settings.size, seed=settings.seed)
    transformer = shipped_transformer()
    network = FittedRows(transformer, predicted_rows(transformer, painting)).to(device)
    optimizer = torch.optim.Adam(network.values.parameters(), lr=settings.learning_rate)
    loss = FitLoss(vgg, target, settings)

    folder = checkpoint_dir_for(output)
    start, history = 0, []
    if resume:
        start, history, position = load_checkpoint(folder, network, optimizer)
        dataset.restore(position)
        generator.set_state(load_generator_state(folder))
    run_history: list[dict[str, float]] = []
    metadata = fit_metadata(painting, settings, output)
    started = time.perf_counter()
    step = start
    for step in range(start + 1, settings.steps + 1):
        crops = dataset.batch(settings.batch).to(device)
        with autocast_for(device, dtype):
            terms = loss(network, crops, generator)
        values = take_step(optimizer, terms, step, "the fit")
        run_history.append(values)
        written = None
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            save_checkpoint(folder, network, optimizer, step, settings, painting,
                            history + run_history, dataset.position())
            save_generator_state(folder, generator)
            write_fitted_style(output, network.rows(), metadata | {"steps": str(step)})
            written = folder
        if on_step is not None:
            on_step(TrainStep(step, settings.steps, values, time.perf_counter() - started,
                              written))
    if start >= settings.steps:  # nothing left to do; make sure the output exists
        write_fitted_style(output, network.rows(), metadata | {"steps": str(start)})
    return FitResult(output, max(step, start), time.perf_counter() - started, run_history)


def save_generator_state(folder: Path, generator: torch.Generator) -> None:
    """The noise and motion stream, so a resumed fit draws what the whole run would have."""
    partial = folder / f"{GENERATOR_FILE}.tmp"
    torch.save(generator.get_state(), partial)
    partial.replace(folder / GENERATOR_FILE)


def load_generator_state(folder: Path) -> torch.Tensor:
    try:
        return torch.load(folder / GENERATOR_FILE, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputError(folder, f"cannot resume from this checkpoint ({exc})") from None


def fit_metadata(painting: Path, settings: FitSettings, output: Path) -> dict:
    return {
        "style": settings.style_name or output.stem.removeprefix("style_"),
        "style_image": painting.name,
        "source": f"fitted by vidstyle train from {painting.name}",
        "licence": "user-supplied",
        "size": str(settings.size),
        "style_size": str(settings.style_size),
        "weights": (f"content {settings.content_weight:g}, style {settings.style_weight:g}, "
                    f"stability {settings.stability_weight:g}, darken {settings.max_darken:g}"),
    }
