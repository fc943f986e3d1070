"""`vidstyle styles list|add|remove|preview` and `vidstyle preview CLIP`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from vidstyle.cli.common import AsJson, Command, console, knob_option, settings_options, user_errors
from vidstyle.config import Settings, knobs_named
from vidstyle.files import check_output_path

(OVERWRITE,) = knobs_named("output.overwrite")

styles_app = typer.Typer(help="List, add, remove and preview styles.", no_args_is_help=True)


@styles_app.command("list", cls=Command)
def list_command(as_json: AsJson = False) -> None:
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
        network = f"{info.base} (fitted)" if info.base else info.family
        table.add_row(name, network, info.source, info.licence, info.origin)
    console.print(table)


@styles_app.command("add", cls=Command)
def add_command(
    name: Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                        help="The new style's name.")],
    file: Annotated[Path, typer.Argument(metavar="FILE", show_default=False,
                                         help="A fitted style (vidstyle train), a Johnson .pth/.safetensors, or a painting.")],
    overwrite: Annotated[bool, typer.Option("--overwrite",
                                            help="Replace a style of that name.")] = False,
) -> None:
    """Store a style under NAME: a fitted style, a trained Johnson network, or any painting."""
    from vidstyle.styles import add_user_style, user_styles_dir

    with user_errors():
        info = add_user_style(name, file, overwrite=overwrite)
    console.print(f"added [bold]{info.name}[/] ({info.family}) to {user_styles_dir()}")


@styles_app.command("remove", cls=Command)
def remove_command(name: Annotated[str, typer.Argument(
    metavar="NAME", show_default=False, help="A user style's name.",
)]) -> None:
    """Delete one of your styles."""
    from vidstyle.styles import remove_user_style

    with user_errors():
        path = remove_user_style(name)
    console.print(f"removed [bold]{name}[/] ({path})")


@styles_app.command("preview", cls=Command)
def preview_sheet_command(
    photo: Annotated[Path, typer.Argument(
        metavar="PHOTO", show_default=False, help="A photo to show every style on.",
    )],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE",
                                         help="The sheet to write (.png/.jpg).")]
    = Path("styles_sheet.png"),
    only: Annotated[str | None, typer.Option(
        "--styles", metavar="TEXT", show_default="every style", help="Comma-separated names.",
    )] = None,
    tile: Annotated[int, typer.Option(metavar="INTEGER", min=16,
                                      help="Long side of each tile, pixels.")] = 256,
    columns: Annotated[int, typer.Option(metavar="INTEGER", min=1,
                                         help="Tiles per row.")] = 6,
    overwrite: knob_option(OVERWRITE) = None,
) -> None:
    """A labelled contact sheet of PHOTO in every style."""
    from vidstyle.preview import contact_sheet, save_picture

    started = time.monotonic()
    with user_errors():
        names = [n.strip() for n in only.split(",")] if only else None
        check_output_path(output, bool(overwrite))  # before minutes of stylizing
        written = save_picture(output, contact_sheet(photo, names, tile=tile, columns=columns),
                               overwrite=bool(overwrite))
    console.print(f"wrote {written} in {time.monotonic() - started:.1f} s", highlight=False)


@settings_options(knobs_named("style", "strength", "preserve_color", "transition",
                              OVERWRITE.key))
def preview_clip_command(
    clip: Annotated[Path, typer.Argument(metavar="VIDEO", show_default=False,
                                         help="A video.")],
    settings: Settings,
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE",
                                         help="The picture to write (.png/.jpg).")]
    = Path("preview.png"),
    frames: Annotated[int, typer.Option(metavar="INTEGER", min=1,
                                        help="How many moments of the clip.")] = 4,
    size: Annotated[int, typer.Option(metavar="INTEGER", min=16,
                                      help="Long side of each frame, pixels.")] = 320,
) -> None:
    """A few frames of CLIP, original beside stylized, in seconds; for a style schedule
    ('0:scream, 12.5:wave'), the frames around each change."""
    from vidstyle.preview import clip_strip, save_picture, schedule_strip
    from vidstyle.styles.spec import is_schedule

    started = time.monotonic()
    overwrite = settings.output.overwrite
    with user_errors():
        check_output_path(output, overwrite)
        if is_schedule(settings.style):
            strip = schedule_strip(clip, settings.style, transition=settings.transition,
                                   size=size, strength=settings.strength,
                                   preserve_color=settings.preserve_color)
        else:
            strip = clip_strip(clip, settings.style, frames=frames, size=size,
                               strength=settings.strength,
                               preserve_color=settings.preserve_color)
        written = save_picture(output, strip, overwrite=overwrite)
    console.print(f"wrote {written} in {time.monotonic() - started:.1f} s", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(styles_app, name="styles")
    app.command("preview", cls=Command)(preview_clip_command)
