"""`vidstyle image`: stylize a photo (fast network, or the Gatys optimisation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vidstyle.api import stylize_image
from vidstyle.cli.common import Command, err_console, settings_options, user_errors
from vidstyle.config import IMAGE, Settings, knobs_for

Opt = typer.Option


@settings_options(knobs_for(IMAGE))
def image(
    src: Annotated[Path, typer.Argument(
        metavar="PHOTO", show_default=False, help="The photo to stylize.",
    )],
    settings: Settings,
    output: Annotated[Path | None, Opt(
        "--output", "-o", metavar="FILE", show_default="PHOTO.STYLE.EXT beside the photo",
        help="Output image (.png/.jpg).",
    )] = None,
) -> None:
    """Stylize one image."""
    with user_errors():
        dst = stylize_image(src, output, settings)
    err_console.print(str(dst), highlight=False)


def register(app: typer.Typer) -> None:
    app.command("image", cls=Command)(image)
