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
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from vidstyle.api import VideoResult, default_output_path
from vidstyle.config import Settings
from vidstyle.errors import MissingExtraError, SettingsError, VidstyleError
from vidstyle.files import expand_inputs
from vidstyle.progress import ProgressCallback

EXECUTORS = ("local", "ray")

# Called once per input when it is finished: (src, result or None, one-line error or None).
FileDoneCallback = Callable[[Path, VideoResult | None, str | None], None]


@dataclass(frozen=True)
class Job:
    """One input and the output it becomes."""

    src: Path
    dst: Path


@dataclass
class BatchResult:
    """What a batch produced: finished files, and failed ones with their one-line error."""

    results: list[VideoResult] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RunHooks:
    """How a caller watches and stops a batch: progress events, one call per finished
    file, and a flag that cancels what is running."""

    on_progress: ProgressCallback | None = None
    on_file_done: FileDoneCallback | None = None
    cancel: threading.Event | None = None

    def file_done(self, src: Path, result: VideoResult | None, error: str | None) -> None:
        if self.on_file_done is not None:
            self.on_file_done(src, result, error)


NO_HOOKS = RunHooks()


class Executor(ABC):
    """Where jobs run. Subclasses implement `run`; `process` comes with it."""

    @abstractmethod
    def run(self, jobs: Sequence[Job], settings: Settings,
            hooks: RunHooks = NO_HOOKS) -> BatchResult:
        """Every job to its outcome; a failed file is reported and the batch goes on.
        Raises only for the whole batch (bad settings, Cancelled)."""

    def process(self, src: Path, dst: Path, settings: Settings, *,
                on_progress: ProgressCallback | None = None,
                cancel: threading.Event | None = None) -> VideoResult:
        """One job, blocking until done: the watch loop's `process` callable. Raises
        VidstyleError on failure."""
        batch = self.run([Job(Path(src), Path(dst))], settings,
                         RunHooks(on_progress=on_progress, cancel=cancel))
        if batch.failures:
            raise VidstyleError(batch.failures[0][1])
        return batch.results[0]


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
        from vidstyle.executors.local import LocalExecutor

        return LocalExecutor(network=network, **options)
    if name == "ray":
        try:
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
