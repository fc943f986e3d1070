"""`vidstyle apply`: stylize one or many videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vidstyle.api import VideoResult, own_output_reason
from vidstyle.cli.common import (
    AsJson,
    Command,
    Executor,
    Quiet,
    RayAddress,
    Segments,
    SegmentSeconds,
    console,
    err_console,
    settings_options,
    user_errors,
)
from vidstyle.config import VIDEO, Settings, knobs_for
from vidstyle.executors import run_apply
from vidstyle.files import expand_inputs, output_folder
from vidstyle.progress import ProgressDisplay

Opt = typer.Option
# Exit status when every file was written but vidstyle left out something of an input that
# a player could play (a dropped stream, a packet the muxer refused): a script must
# notice. The input's own damage (packets that do not decode, a file cut short) is a
# warning with exit 0: the output carries everything of the input that plays.
DATA_LOST_EXIT = 3


@settings_options(knobs_for(VIDEO))
def apply(
    inputs: Annotated[list[Path], typer.Argument(
        metavar="VIDEO...", show_default=False, help="Video files or folders of videos.",
    )],
    settings: Settings,
    output: Annotated[Path | None, Opt(
        "--output", "-o", metavar="FILE", show_default="INPUT.STYLE.EXT beside the input",
        help="Output file (one input only).",
    )] = None,
    out: Annotated[Path | None, Opt(
        "--out", metavar="FOLDER", show_default="beside each input",
        help="Output folder, created if missing.",
    )] = None,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    segments: Segments = None,
    segment_seconds: SegmentSeconds = None,
    include_outputs: Annotated[bool, Opt(
        "--include-outputs", help="In folders, also stylize files vidstyle wrote.",
    )] = False,
    quiet: Quiet = False,
    as_json: AsJson = False,
) -> None:
    """Stylize videos: every frame, same timing, original audio kept.

    Exit status: 0 all done (damage in an input is a warning); 1 some file failed; 3 all
    written, but vidstyle dropped or shortened something of an input (see the
    warnings)."""
    with user_errors(), output_folder(out):
        skipped: list[tuple[Path, str]] = []
        sources = expand_inputs(inputs, skip=None if include_outputs else own_output_reason,
                                skipped=skipped)
        for path, reason in skipped:
            err_console.print(f"[yellow]skipped:[/] {path}: {reason}", highlight=False)
        with ProgressDisplay(len(sources), console=err_console,
                             live=not (quiet or as_json)) as display:
            results, failures = run_apply(
                sources, settings, executor=executor, address=ray_address, out_dir=out,
                output=output, segments=segments, segment_seconds=segment_seconds,
                on_progress=None if quiet or as_json else display,
                on_file_done=report_file(display, quiet=quiet or as_json),
            )
    if as_json:
        console.print_json(json.dumps({
            "results": [r.to_dict() for r in results],
            "failures": [{"src": str(p), "error": m} for p, m in failures],
        }))
    if failures:
        raise typer.Exit(1)
    if any(r.data_lost for r in results):
        raise typer.Exit(DATA_LOST_EXIT)


def report_file(display: ProgressDisplay, *, quiet: bool):
    """The per-file callback: one clean line for each finished file, above the bars."""

    def file_done(src: Path, result: VideoResult | None, error: str | None) -> None:
        if error is not None:
            display.file_finished(src, f"[bold red]error:[/] {error}")
            return
        # Warnings even with --quiet: they say what of the input was lost or damaged.
        lines = [f"[yellow]warning:[/] {src}: {w}" for w in result.warnings]
        if not quiet:  # what became of the picture (an HDR input tone-mapped...)
            lines += [f"[cyan]note:[/] {src}: {s['why']}" for s in result.streams
                      if s["kind"] == "video" and s["why"]]
        if not quiet:
            lines.append(
                f"{result.dst}  ({result.frames} frames, {result.fps:.1f} fps, "
                f"{result.device} {result.precision})"
            )
        display.file_finished(src, *lines)

    return file_done


def register(app: typer.Typer) -> None:
    app.command("apply", cls=Command)(apply)
