"""`vidstyle watch` and `vidstyle status`: the watch-folder batch mode (see docs/watch.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

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
from vidstyle.config import VIDEO, Settings, knobs_for, knobs_named
from vidstyle.errors import SettingsError
from vidstyle.watch.ledger import STATES

Opt = typer.Option
(STYLE_KNOB,) = knobs_named("style")


@settings_options(knobs_for(VIDEO, without=("style",)))
def watch(
    inbox: Annotated[Path, typer.Argument(
        metavar="INBOX", show_default=False, help="Folder to watch (recursively).",
    )],
    out: Annotated[Path, Opt("--out", metavar="FOLDER", help="Folder for the stylized videos.")],
    settings: Settings,
    style: Annotated[list[str] | None, Opt(
        "--style", "-s", metavar="TEXT", show_default=Settings().style,
        help=STYLE_KNOB.describe() + " Repeat for one job per style.",
    )] = None,
    state: Annotated[Path | None, Opt(
        "--state", metavar="FOLDER", show_default="OUT/.vidstyle", help="Ledger folder.",
    )] = None,
    settle: Annotated[float, Opt(
        metavar="NUMBER", help="Seconds a file's size and mtime must hold still.",
    )] = 2.0,
    poll: Annotated[bool, Opt("--poll", help="Poll, no OS events (network shares).")] = False,
    once: Annotated[bool, Opt("--once", help="Process what is there, then exit.")] = False,
    retry_failed: Annotated[bool, Opt("--retry-failed", help="Queue failed jobs again.")] = False,
    move_done: Annotated[Path | None, Opt(
        "--move-done", metavar="FOLDER", show_default="left in place",
        help="Move done inputs here.",
    )] = None,
    move_failed: Annotated[Path | None, Opt(
        "--move-failed", metavar="FOLDER", show_default="left in place",
        help="Move failed inputs here (+ .error.txt).",
    )] = None,
    include_outputs: Annotated[bool, Opt(
        "--include-outputs", help="Also stylize files vidstyle wrote (skipped otherwise).",
    )] = False,
    executor: Executor = "local",
    ray_address: RayAddress = None,
    segments: Segments = None,
    segment_seconds: SegmentSeconds = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
) -> None:
    """Stylize every video dropped into INBOX, exactly once per style and settings."""
    from vidstyle.watch import watch_folder
    from vidstyle.watch.display import WatchDisplay

    with user_errors():
        extra = {}
        if executor != "local" or segments is not None or segment_seconds is not None:
            from vidstyle.executors import get_executor

            # The ledger stays on this machine; only the stylizing goes to the cluster.
            extra["process"] = get_executor(
                executor, ray_address, segments=segments, segment_seconds=segment_seconds
            ).process
        display = WatchDisplay(err_console, live=not (quiet or as_json))
        with display:
            summary = watch_folder(
                inbox, out, style or [settings.style], settings,
                state_dir=state, once=once, settle=settle, poll=poll,
                retry_failed=retry_failed, move_done=move_done, move_failed=move_failed,
                include_outputs=include_outputs, on_event=None if quiet else display, **extra,
            )
    if as_json:
        console.print_json(json.dumps(summary.to_dict()))
    elif not quiet:
        err_console.print(
            f"{summary.done} done, {summary.failed} failed, {summary.requeued} re-queued, "
            f"{summary.recovered} recovered in {summary.seconds:.1f} s", highlight=False,
        )
    if once and summary.failed:
        raise typer.Exit(1)


def status(
    target: Annotated[Path | None, typer.Argument(
        metavar="FOLDER", show_default=False, help="Inbox, output or state folder.",
    )] = None,
    state: Annotated[Path | None, Opt("--state", metavar="FOLDER", show_default="none",
                                      help="Ledger folder.")] = None,
    only: Annotated[str | None, Opt(
        "--only", metavar="TEXT", show_default="every state",
        help=f"Show jobs in one state. One of: {', '.join(STATES)}.",
    )] = None,
    as_json: AsJson = False,
) -> None:
    """Show the watch ledger: each job's state, times and error."""
    from vidstyle.watch import folder_status
    from vidstyle.watch.display import status_table

    with user_errors():
        where = state or target
        if where is None:
            raise SettingsError("name the inbox (or --state DIR) whose ledger to show")
        if only is not None and only not in STATES:
            raise SettingsError(f"unknown state {only!r}: choose one of {', '.join(STATES)}")
        jobs = [j for j in folder_status(where) if only is None or j.state == only]
    if as_json:
        console.print_json(json.dumps([job.to_dict() for job in jobs]))
    else:
        console.print(status_table(jobs))


def register(app: typer.Typer) -> None:
    app.command("watch", cls=Command)(watch)
    app.command("status", cls=Command)(status)
