"""`vidstyle train`: train a Johnson transform network for a new style."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from vidstyle.cli.common import Command, console, err_console, user_errors
from vidstyle.train import TrainSettings, TrainStep, train_style, with_overrides

Opt = typer.Option


def train(
    style_image: Annotated[Path, typer.Argument(help="The painting to learn.")],
    data: Annotated[Path, Opt("--data", help="Folder of photos and/or videos to train on.")],
    output: Annotated[Path, Opt("--output", "-o", help="Network to write (.safetensors).")],
    steps: Annotated[int | None, Opt(help="Total optimisation steps.")] = None,
    size: Annotated[int | None, Opt(help="Training crop size (pixels, multiple of 4).")] = None,
    batch: Annotated[int | None, Opt(help="Crops per step.")] = None,
    style_size: Annotated[int | None, Opt(help="Painting's long side for its Grams: "
                                          "bigger = bigger brush strokes.")] = None,
    content_weight: Annotated[float | None, Opt(help="Content loss weight.")] = None,
    style_weight: Annotated[float | None, Opt(help="Style loss weight.")] = None,
    tv_weight: Annotated[float | None, Opt(help="Total-variation weight.")] = None,
    temporal_weight: Annotated[float | None, Opt(help="Temporal loss on video frame pairs "
                                               "(0 = off; needs videos in --data).")] = None,
    teacher: Annotated[str | None, Opt(help="Also pull toward this style's output (any "
                                       "--style spec, e.g. scream_arbitrary).")] = None,
    teacher_weight: Annotated[float | None, Opt(help="Weight of the teacher's L1 term.")] = None,
    content_layer: Annotated[str | None, Opt(help="VGG-19 layer for content.")] = None,
    learning_rate: Annotated[float | None, Opt("--lr", help="Adam learning rate.")] = None,
    init: Annotated[str | None, Opt(help="Start from this Johnson network.")] = None,
    checkpoint_every: Annotated[int | None, Opt(help="Steps between checkpoints.")] = None,
    device: Annotated[str | None, Opt(help="auto | cpu | cuda[:N] | mps")] = None,
    precision: Annotated[str | None, Opt(help="auto | fp32 | fp16 | bf16")] = None,
    threads: Annotated[int | None, Opt(help="CPU threads for torch.")] = None,
    seed: Annotated[int | None, Opt(help="Random seed.")] = None,
    name: Annotated[str | None, Opt(help="Style name stored in the file.")] = None,
    resume: Annotated[bool, Opt("--resume", help="Continue from OUTPUT.train/ (its step, "
                                "optimizer state and data position).")] = False,
) -> None:
    """Train a transform network for STYLE_IMAGE; load it with `vidstyle styles add`."""
    with user_errors():
        settings = with_overrides(
            TrainSettings(), steps=steps, size=size, batch=batch, style_size=style_size,
            content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
            temporal_weight=temporal_weight, teacher=teacher, teacher_weight=teacher_weight,
            content_layer=content_layer,
            learning_rate=learning_rate, init=init, checkpoint_every=checkpoint_every,
            device=device, precision=precision, threads=threads, seed=seed, style_name=name,
        )
        with Progress(
            TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
            console=console, transient=False,
        ) as progress:
            task = progress.add_task("train", total=settings.steps, losses="")

            def show(event: TrainStep) -> None:
                terms = "  ".join(f"{k} {v:.3g}" for k, v in event.losses.items())
                progress.update(task, completed=event.step, losses=terms)
                if event.checkpoint:
                    progress.console.print(f"step {event.step}: checkpoint in {event.checkpoint}")

            result = train_style(style_image, data, output, settings=settings, on_step=show,
                                 resume=resume)
    err_console.print(f"{result.output} ({result.steps} steps, {result.seconds_per_step:.2f} s/step)",
                      highlight=False)


def register(app: typer.Typer) -> None:
    app.command("train", cls=Command)(train)
