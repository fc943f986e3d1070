"""Where stylization jobs run: in this process (`local`, the default) or on a Ray cluster.

    results, failures = run_apply(paths, settings, executor="ray", segments=8)

Every executor is an `Executor`: `run` takes the list of `Job`s, the settings and one
`RunHooks` (progress, per-file callback, cancel flag), and writes each output atomically;
`process` is the watch loop's one-job shape of the same thing. How a file is cut
(segments) is the executor's own construction option. A file that fails
(a bad input, an unwritable output) is reported with its one-line error and the rest of
the batch carries on. See docs/distributed.md for the Ray side.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from vidstyle.api import VideoResult, default_output_path
from vidstyle.config import Settings
from vidstyle.errors import MissingExtraError, SettingsError
from vidstyle.executors.base import (
    NO_HOOKS,
    BatchResult,
    Executor,
    FileDoneCallback,
    Job,
    RunHooks,
)
from vidstyle.executors.local import LocalExecutor
from vidstyle.files import expand_inputs
from vidstyle.progress import ProgressCallback

EXECUTORS = ("local", "ray")


def get_executor(
    name: str = "local", address: str | None = None, *, network: nn.Module | None = None,
    **options,
) -> Executor:
    """The executor `name` names. `address` (ray only): ``auto`` for the cluster this
    machine belongs to, ``HOST:PORT`` for a given head node, None to start a local one.
    `network` replaces the style network (tests, custom models); `options` go to the
    executor (``segments=N`` or ``segment_seconds=S``: ray only)."""
    if name == "local":
        if address is not None:
            raise SettingsError("--ray-address needs --executor ray")
        return LocalExecutor(network=network, **options)
    if name == "ray":
        try:  # the optional extra: imported only when asked for
            from vidstyle.executors.ray import RayExecutor
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] != "ray":
                raise
            raise MissingExtraError("--executor ray", "ray") from None
        return RayExecutor(address, network=network, **options)
    raise SettingsError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")


def plan_jobs(
    sources: Sequence[str | Path],
    settings: Settings,
    *,
    out_dir: str | Path | None = None,
    output: str | Path | None = None,
) -> list[Job]:
    """Inputs (files or folders) and where each one's output goes."""
    paths = expand_inputs(list(sources))
    if output is not None and len(paths) > 1:
        raise SettingsError("--output names one file; use --out DIR for several inputs")
    return [
        Job(src, Path(output) if output is not None
            else default_output_path(src, settings.style, out_dir))
        for src in paths
    ]


def run_apply(
    sources: Sequence[str | Path],
    settings: Settings,
    *,
    executor: str = "local",
    address: str | None = None,
    out_dir: str | Path | None = None,
    output: str | Path | None = None,
    segments: int | None = None,
    segment_seconds: float | None = None,
    on_progress: ProgressCallback | None = None,
    on_file_done: FileDoneCallback | None = None,
    cancel: threading.Event | None = None,
    network: nn.Module | None = None,
) -> tuple[list[VideoResult], list[tuple[Path, str]]]:
    """What `vidstyle apply` does: every input through `executor`, by file, or cut into
    `segments` (or segments of `segment_seconds`) stylized in parallel (ray only).

    Returns (results, failures); raises only for problems with the whole batch
    (bad settings, missing extra, cancelled).
    """
    if segments is not None and segment_seconds is not None:
        raise SettingsError("give --segments or --segment-seconds, not both")
    jobs = plan_jobs(sources, settings, out_dir=out_dir, output=output)
    runner = get_executor(executor, address, network=network, segments=segments,
                          segment_seconds=segment_seconds)
    batch = runner.run(jobs, settings, RunHooks(on_progress, on_file_done, cancel))
    return batch.results, batch.failures


__all__ = [
    "EXECUTORS",
    "BatchResult",
    "Executor",
    "FileDoneCallback",
    "Job",
    "NO_HOOKS",
    "RunHooks",
    "get_executor",
    "plan_jobs",
    "run_apply",
]
