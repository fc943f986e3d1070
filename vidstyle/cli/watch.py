"""`vidstyle watch` and `vidstyle status`: the watch-folder batch mode (see docs/watch.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vidstyle.cli.common import build_settings, console, err_console, user_errors
from vidstyle.errors import SettingsError

Opt = typer.Option


def watch(
    inbox: Annotated[Path, typer.Argument(help="Folder to watch (recursively).")],
    out: Annotated[Path, Opt("--out", help="Folder for the stylized videos.")],
    style: Annotated[
        list[str] | None, Opt("--style", "-s", help="Style; repeat for one job per style.")
    ] = None,
    config: Annotated[Path | None, Opt("--config", "-c", help="Settings preset (TOML).")] = None,
    state: Annotated[
        Path | None, Opt("--state", help="Ledger folder (default: OUT/.vidstyle).")
    ] = None,
    settle: Annotated[float, Opt(help="Seconds a file's size and mtime must hold still.")] = 2.0,
    poll: Annotated[bool, Opt("--poll", help="Poll, no OS events (network shares).")] = False,
    once: Annotated[bool, Opt("--once", help="Process what is there, then exit.")] = False,
    retry_failed: Annotated[bool, Opt("--retry-failed", help="Queue failed jobs again.")] = False,
    move_done: Annotated[Path | None, Opt("--move-done", help="Move done inputs here.")] = None,
    move_failed: Annotated[
        Path | None, Opt("--move-failed", help="Move failed inputs here (+ .error.txt).")
    ] = None,
    device: Annotated[str | None, Opt(help="auto | cpu | cuda[:N] | mps")] = None,
    precision: Annotated[str | None, Opt(help="auto | fp32 | fp16 | bf16")] = None,
    batch: Annotated[int | None, Opt(help="Frames per network call (default: 1 on CPU, 4 on GPU).")] = None,
    max_size: Annotated[int | None, Opt(help="Network input: frames shrunk to this side.")] = None,
    executor: Annotated[str, Opt(help="Where jobs run: local | ray (pip install 'vidstyle\\[ray]').")] = "local",
    ray_address: Annotated[
        str | None, Opt("--ray-address", help="Ray cluster: auto | HOST:PORT.")
    ] = None,
    segments: Annotated[
        int | None, Opt(help="Cut each video into N segments stylized in parallel (ray).")
    ] = None,
    segment_seconds: Annotated[
        float | None, Opt(help="Like --segments, by segment length in seconds (ray).")
    ] = None,
    resume: Annotated[bool | None, Opt("--resume/--no-resume", help="Journal segments so a file picked up again goes on where it stopped (always on past --resume-after).")] = None,
    resume_after: Annotated[float | None, Opt(help="Inputs longer than this many seconds are resumable (default 120).")] = None,
    resume_segment: Annotated[float | None, Opt(help="Seconds per resumable segment (default 30).")] = None,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress display.")] = False,
    as_json: Annotated[bool, Opt("--json", help="Print a JSON summary at the end.")] = False,
) -> None:
    """Stylize every video dropped into INBOX, exactly once per style and settings."""
    from vidstyle.watch import watch_folder
    from vidstyle.watch.display import WatchDisplay

    with user_errors():
        settings = build_settings(config, device=device, precision=precision, batch=batch,
                                  max_size=max_size, resume=resume, resume_after=resume_after,
                                  resume_segment=resume_segment)
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
                on_event=None if quiet else display, **extra,
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
    target: Annotated[Path | None, typer.Argument(help="Inbox, output or state folder.")] = None,
    state: Annotated[Path | None, Opt("--state", help="Ledger folder.")] = None,
    only: Annotated[str | None, Opt("--only", help="queued | running | done | failed")] = None,
    as_json: Annotated[bool, Opt("--json", help="JSON for scripts.")] = False,
) -> None:
    """Show the watch ledger: each job's state, times and error."""
    from vidstyle.watch import folder_status
    from vidstyle.watch.display import status_table

    with user_errors():
        where = state or target
        if where is None:
            raise SettingsError("name the inbox (or --state DIR) whose ledger to show")
        jobs = [j for j in folder_status(where) if only is None or j.state == only]
    if as_json:
        console.print_json(json.dumps([job.to_dict() for job in jobs]))
    else:
        console.print(status_table(jobs))


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
    app.command("status")(status)
