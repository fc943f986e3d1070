"""`vidstyle train`: a new style from a painting (fitted by default; a Johnson network on
request), and `vidstyle stabilize`."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vidstyle.cli.common import Command, console, err_console, user_errors
from vidstyle.config import PRECISIONS
from vidstyle.errors import SettingsError
from vidstyle.train import TrainSettings, TrainStep, train_style, with_overrides
from vidstyle.train.fit import FitSettings, fit_style
from vidstyle.train.stability import SOURCE_NETWORK, StabilitySettings
from vidstyle.train.stability import stabilize as run_stabilize

Opt = typer.Option
TRAIN_DEFAULTS = TrainSettings()
UNSET_DEFAULTS = {"teacher": "none", "init": "a new network", "threads": "torch's choice",
                  "style_name": "the output's file name"}


def shown(field: str) -> str:
    """The default --help shows: the TrainSettings value the option leaves alone."""
    value = getattr(TRAIN_DEFAULTS, field)
    return UNSET_DEFAULTS.get(field, "") if value is None else str(value)


@contextmanager
def step_display(label: str, steps: int, checkpoints: bool = False):
    """A live bar with the latest loss terms; yields the `on_step` callback that feeds it."""
    with Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
        console=console, transient=False,
    ) as progress:
        task = progress.add_task(label, total=steps, losses="")

        def show(event: TrainStep) -> None:
            terms = "  ".join(f"{k} {v:.3g}" for k, v in event.losses.items())
            progress.update(task, completed=event.step, losses=terms)
            if checkpoints and event.checkpoint:
                progress.console.print(f"step {event.step}: checkpoint in {event.checkpoint}")

        yield show


FIT_DEFAULTS = FitSettings()
METHODS = ("fit", "johnson")


def both(field: str, fit_field: str | None = None) -> str:
    """The --help default of an option both methods take: "fit X, johnson Y"."""
    fit_value = getattr(FIT_DEFAULTS, fit_field or field)
    return f"fit {fit_value}, johnson {shown(field)}"


def train(
    style_image: Annotated[Path, typer.Argument(help="The painting to learn.")],
    output: Annotated[Path, Opt("--output", "-o", help="Style file to write (.safetensors).")],
    method: Annotated[str, Opt(help="fit: the painting as norm rows of the shipped arbitrary-style "
                               "network, minutes on a CPU; johnson: a whole network from "
                               "scratch (GPU-days for full quality; needs --data).")] = "fit",
    data: Annotated[Path | None, Opt("--data", show_default="fit: the shipped fit set",
                                     help="Folder of photos and/or videos to train on.")] = None,
    steps: Annotated[int | None, Opt(show_default=both("steps"), help="Total optimisation steps.")] = None,
    size: Annotated[int | None, Opt(show_default=both("size"), help="Training crop size (pixels, multiple of 4).")] = None,
    batch: Annotated[int | None, Opt(show_default=both("batch"), help="Crops per step.")] = None,
    style_size: Annotated[int | None, Opt(show_default=both("style_size"), help="Painting's long side for its Grams: "
                                          "bigger = bigger brush strokes.")] = None,
    content_weight: Annotated[float | None, Opt(show_default=both("content_weight"), help="Content loss weight.")] = None,
    style_weight: Annotated[float | None, Opt(show_default=both("style_weight"), help="Style loss weight.")] = None,
    stability_weight: Annotated[float | None, Opt(show_default=f"fit {FIT_DEFAULTS.stability_weight}", help="fit: weight of the "
                                                  "move-with-the-input term (less flicker).")] = None,
    darken: Annotated[float | None, Opt(show_default=f"fit {FIT_DEFAULTS.max_darken}", help="fit: also fit on dimmed crops, "
                                        "brightness scaled by down to 1 - DARKEN (steadier on dark footage).")] = None,
    tv_weight: Annotated[float | None, Opt(show_default=f"johnson {shown('tv_weight')}", help="Total-variation weight.")] = None,
    temporal_weight: Annotated[float | None, Opt(show_default=f"johnson {shown('temporal_weight')}", help="Temporal loss on video frame pairs "
                                               "(0 = off; needs videos in --data).")] = None,
    teacher: Annotated[str | None, Opt(show_default=shown("teacher"), help="johnson: also pull toward this style's output "
                                       "(any --style spec).")] = None,
    teacher_weight: Annotated[float | None, Opt(show_default=shown("teacher_weight"), help="johnson: weight of the teacher's L1 term.")] = None,
    content_layer: Annotated[str | None, Opt(show_default=shown("content_layer"), help="johnson: VGG-19 layer for content.")] = None,
    learning_rate: Annotated[float | None, Opt("--lr", show_default=both("learning_rate"), help="Adam learning rate.")] = None,
    init: Annotated[str | None, Opt(show_default="a new network", help="johnson: start from this network file.")] = None,
    checkpoint_every: Annotated[int | None, Opt(show_default=both("checkpoint_every"), help="Steps between checkpoints.")] = None,
    device: Annotated[str | None, Opt(show_default="auto", help="Where to train: auto, cpu, cuda, cuda:N or mps.")] = None,
    precision: Annotated[str | None, Opt(show_default="auto", help=f"One of: {', '.join(PRECISIONS)}.")] = None,
    threads: Annotated[int | None, Opt(show_default="torch's choice", help="CPU threads for torch.")] = None,
    seed: Annotated[int | None, Opt(show_default="0", help="Random seed.")] = None,
    name: Annotated[str | None, Opt(show_default=shown("style_name"), help="Style name stored in the file.")] = None,
    resume: Annotated[bool, Opt("--resume", help="Continue from OUTPUT.fit/ or OUTPUT.train/ (step, "
                                "optimizer state and data position).")] = False,
) -> None:
    """Learn STYLE_IMAGE as a new style; load it with `vidstyle styles add NAME OUTPUT`."""
    with user_errors():
        if method not in METHODS:
            raise SettingsError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
        common = {"steps": steps, "size": size, "batch": batch, "style_size": style_size,
                  "content_weight": content_weight, "style_weight": style_weight,
                  "learning_rate": learning_rate, "checkpoint_every": checkpoint_every,
                  "device": device, "precision": precision, "threads": threads, "seed": seed,
                  "style_name": name}
        if method == "fit":
            refused = {"--tv-weight": tv_weight, "--temporal-weight": temporal_weight,
                       "--teacher": teacher, "--teacher-weight": teacher_weight,
                       "--content-layer": content_layer, "--init": init}
            given = [flag for flag, value in refused.items() if value is not None]
            if given:
                raise SettingsError(f"{', '.join(given)}: only with --method johnson")
            settings = replace(FIT_DEFAULTS, **{k: v for k, v in common.items() if v is not None})
            settings = with_overrides(settings, stability_weight=stability_weight,
                                      max_darken=darken)
            with step_display("fit", settings.steps, checkpoints=True) as show:
                result = fit_style(style_image, output, settings=settings, data=data,
                                   on_step=show, resume=resume)
            err_console.print(f"{result.output} ({result.steps} steps, {result.seconds:.0f} s)",
                              highlight=False)
            return
        if data is None:
            raise SettingsError("--method johnson needs --data: a folder of photos and/or videos")
        fit_only = {"--stability-weight": stability_weight, "--darken": darken}
        given = [flag for flag, value in fit_only.items() if value is not None]
        if given:
            raise SettingsError(f"{', '.join(given)}: only with --method fit")
        settings = with_overrides(
            TrainSettings(), **common, tv_weight=tv_weight, temporal_weight=temporal_weight,
            teacher=teacher, teacher_weight=teacher_weight, content_layer=content_layer,
            init=init,
        )
        with step_display("train", settings.steps, checkpoints=True) as show:
            johnson = train_style(style_image, data, output, settings=settings, on_step=show,
                                  resume=resume)
    err_console.print(f"{johnson.output} ({johnson.steps} steps, "
                      f"{johnson.seconds_per_step:.2f} s/step)", highlight=False)


STABLE_DEFAULTS = StabilitySettings()


def stabilize(
    data: Annotated[Path, Opt("--data", help="Folder of photos and/or video frames.")],
    output: Annotated[Path, Opt("--output", "-o", help="Network to write (.safetensors).")],
    network: Annotated[str, typer.Argument(help="What to stabilize: a 26-style network "
                                           "(multistyle26) or its file, or a Johnson "
                                           "network file.")] = SOURCE_NETWORK,
    steps: Annotated[int, Opt(help="Optimisation steps.")] = STABLE_DEFAULTS.steps,
    size: Annotated[int, Opt(help="Training crop size (pixels, multiple of 4).")] = STABLE_DEFAULTS.size,
    batch: Annotated[int, Opt(help="Crops per step.")] = STABLE_DEFAULTS.batch,
    learning_rate: Annotated[float, Opt("--lr", help="Adam learning rate.")] = STABLE_DEFAULTS.learning_rate,
    stability_weight: Annotated[float, Opt(help="Weight of the move-with-the-input term.")] = STABLE_DEFAULTS.stability_weight,
    texture_weight: Annotated[float, Opt(help="Weight of the Gram term that keeps the strokes.")] = STABLE_DEFAULTS.texture_weight,
    darken: Annotated[float, Opt(help="Also train on dimmed crops: brightness scaled by "
                                 "down to 1 - DARKEN.")] = STABLE_DEFAULTS.max_darken,
    start: Annotated[Path | None, Opt(help="Continue from an earlier output (the look "
                                       "stays NETWORK's).")] = None,
    preset: Annotated[list[int] | None, Opt(help="26-style network: tune only this preset's "
                                            "own parameters (repeatable); the others stay "
                                            "bit for bit.")] = None,
    threads: Annotated[int | None, Opt(help="CPU threads for torch.")] = None,
    seed: Annotated[int, Opt(help="Random seed.")] = STABLE_DEFAULTS.seed,
) -> None:
    """Fine-tune a network to move with its input instead of repainting (less flicker);
    use the result as --style preset:N@OUTPUT (26-style) or --style OUTPUT (Johnson)."""
    with user_errors():
        settings = StabilitySettings(
            steps=steps, size=size, batch=batch, learning_rate=learning_rate,
            stability_weight=stability_weight, texture_weight=texture_weight,
            max_darken=darken, threads=threads, seed=seed,
            presets=tuple(preset) if preset else STABLE_DEFAULTS.presets)
        with step_display("stabilize", settings.steps) as show:
            result = run_stabilize(data, output, settings=settings, network=network,
                                   start=start, on_step=show)
    err_console.print(f"{result.output} ({result.steps} steps, {result.seconds:.0f} s)",
                      highlight=False)


def register(app: typer.Typer) -> None:
    app.command("train", cls=Command)(train)
    app.command("stabilize", cls=Command)(stabilize)
