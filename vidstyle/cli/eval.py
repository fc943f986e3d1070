"""`vidstyle eval`: how stable (warping error) and how faithful a stylized video is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vidstyle.cli.common import AsJson, Command, console, err_console, user_errors

Opt = typer.Option


def evaluate(
    original: Annotated[Path, typer.Argument(help="The source video.")],
    stylized: Annotated[Path, typer.Argument(help="The stylized video (any resolution).")],
    style: Annotated[
        str | None, Opt("--style", "-s", show_default="none",
                        help="Style image or name: adds the style distance.")
    ] = None,
    as_json: AsJson = False,
    plot: Annotated[
        Path | None, Opt("--plot", show_default="none",
                         help="Write a PNG of the per-frame warping error.")
    ] = None,
    max_frames: Annotated[
        int | None, Opt("--max-frames", min=2, show_default="every frame",
                        help="Compare only the first N frames.")
    ] = None,
    size: Annotated[
        int | None,
        Opt("--size", min=16, show_default="the original's own resolution",
            help="Measure on frames shrunk to this long side (pixels)."),
    ] = None,
    device: Annotated[
        str, Opt(help="Device for the VGG distances: cpu, cuda, cuda:N, mps or auto.")
    ] = "cpu",
) -> None:
    """Warping error (temporal flicker, vs. the original's floor), style and content distance."""
    from vidstyle.device import resolve_device
    from vidstyle.evaluate import evaluate_video, plot_warping_errors

    with user_errors():
        report = evaluate_video(
            original,
            stylized,
            style=style,
            max_frames=max_frames,
            size=size,
            device=resolve_device(device),
        )
        if plot is not None:
            plot_warping_errors(report, plot)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
        return
    print_report(report)
    if plot is not None:
        err_console.print(f"plot: {plot}", highlight=False)


def print_report(report) -> None:
    from rich.table import Table

    table = Table("measure", "value", "meaning", title=f"{report.stylized} vs {report.original}")
    table.add_row("frames", str(report.frames), "pairs compared in order")
    if report.size:
        height, width = report.size
        table.add_row("measured at", f"{width}x{height}", "frame size the warping error used")
    table.add_row(
        "warping error",
        f"{report.warping_error:.5f}",
        "squared RGB change not explained by motion (lower = steadier)",
    )
    table.add_row(
        "  original (floor)",
        f"{report.warping_error_original:.5f}",
        "the same measure on the source video",
    )
    table.add_row("  ratio", f"{report.warping_ratio:.2f}", "1 = no flicker added")
    if report.style_distance is not None:
        table.add_row(
            "style distance",
            f"{report.style_distance:.4g}",
            "VGG-19 Gram loss to the style (lower = closer)",
        )
    if report.content_distance is not None:
        table.add_row(
            "content distance",
            f"{report.content_distance:.4g}",
            "VGG-19 feature loss to the original (lower = closer)",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("eval", cls=Command)(evaluate)
