"""`vidstyle styles list|add|remove|preview` and `vidstyle preview CLIP`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from vidstyle.cli.common import console, user_errors

styles_app = typer.Typer(help="List, add, remove and preview styles.", no_args_is_help=True)


@styles_app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every style name: built-in paintings and presets, then your own."""
    from vidstyle.styles import list_styles

    with user_errors():
        infos = list_styles()
    if as_json:
        console.print_json(json.dumps([info.as_dict() for info in infos]))
        return
    from rich.table import Table

    table = Table("name", "network", "source", "licence", "origin")
    for info in infos:
        name = info.name if info.preset is None else f"{info.name} (preset:{info.preset})"
        table.add_row(name, info.family, info.source, info.licence, info.origin)
    console.print(table)


@styles_app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="the new style's name")],
    file: Annotated[Path, typer.Argument(help="a Johnson .pth/.safetensors, or a painting")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace a style of that name")]
    = False,
) -> None:
    """Store a style under NAME: a trained Johnson network, or any painting."""
    from vidstyle.styles import add_user_style, user_styles_dir

    with user_errors():
        info = add_user_style(name, file, overwrite=overwrite)
    console.print(f"added [bold]{info.name}[/] ({info.family}) to {user_styles_dir()}")


@styles_app.command("remove")
def remove_command(name: Annotated[str, typer.Argument(help="a user style's name")]) -> None:
    """Delete one of your styles."""
    from vidstyle.styles import remove_user_style

    with user_errors():
        path = remove_user_style(name)
    console.print(f"removed [bold]{name}[/] ({path})")


@styles_app.command("preview")
def preview_sheet_command(
    photo: Annotated[Path, typer.Argument(help="a photo to show every style on")],
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("styles_sheet.png"),
    only: Annotated[str | None, typer.Option("--styles", help="comma-separated names")] = None,
    tile: Annotated[int, typer.Option(help="long side of each tile, px")] = 256,
    columns: Annotated[int, typer.Option()] = 6,
) -> None:
    """A labelled contact sheet of PHOTO in every style."""
    from vidstyle.styles.preview import contact_sheet, write_image

    started = time.monotonic()
    with user_errors():
        names = [n.strip() for n in only.split(",")] if only else None
        write_image(output, contact_sheet(photo, names, tile=tile, columns=columns))
    console.print(f"wrote {output} in {time.monotonic() - started:.1f} s")


def preview_clip_command(
    clip: Annotated[Path, typer.Argument(help="a video")],
    style: Annotated[str, typer.Option("--style", "-s")] = "scream",
    output: Annotated[Path, typer.Option("-o", "--output")] = Path("preview.png"),
    frames: Annotated[int, typer.Option(help="how many moments of the clip")] = 4,
    size: Annotated[int, typer.Option(help="long side of each frame, px")] = 320,
    strength: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
    preserve_color: Annotated[bool, typer.Option("--preserve-color")] = False,
    transition: Annotated[float, typer.Option(help="style schedule: crossfade seconds")] = 1.0,
) -> None:
    """A few frames of CLIP, original beside stylized, in seconds; for a style schedule
    ('0:scream, 12.5:wave'), the frames around each change."""
    from vidstyle.styles.preview import clip_strip, schedule_strip, write_image
    from vidstyle.styles.schedule import is_schedule

    started = time.monotonic()
    with user_errors():
        if is_schedule(style):
            strip = schedule_strip(clip, style, transition=transition, size=size,
                                   strength=strength, preserve_color=preserve_color)
        else:
            strip = clip_strip(clip, style, frames=frames, size=size, strength=strength,
                               preserve_color=preserve_color)
        write_image(output, strip)
    console.print(f"wrote {output} in {time.monotonic() - started:.1f} s")


def register(app: typer.Typer) -> None:
    app.add_typer(styles_app, name="styles")
    app.command("preview")(preview_clip_command)
