"""Stylize on a Ray cluster: many files at once (by file), or one long file cut into
segments stylized in parallel and joined without re-encoding (by segment).

Data movement: workers read inputs and write outputs by path, on storage every node
mounts at the same path (NFS, a cluster file system, or one machine's disk for a local
cluster); only settings, the plan, results and progress travel through Ray. Why, and the
alternative, in docs/distributed.md.

Faults: a task whose worker dies (killed, out of memory, node lost) is retried by Ray
(`MAX_RETRIES`); so is one that raises a transient error (`TRANSIENT_ERRORS`). A
`VidstyleError` (bad input, unwritable output) is a verdict, not a hiccup: the task
returns it as its outcome, unretried, and the batch goes on. Outputs appear by atomic
rename, and a retry first checks whether an earlier attempt already renamed its output
into place, so every output is produced exactly once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ray
import torch
from torch import nn

from vidstyle import segmented
from vidstyle.api import Stylizer, VideoResult
from vidstyle.config import Settings
from vidstyle.errors import Cancelled, SettingsError, VidstyleError
from vidstyle.executors.base import NO_HOOKS, BatchResult, Executor, Job, RunHooks
from vidstyle.executors.progress import ClusterProgress
from vidstyle.files import check_output_path, file_signature, temp_files, temp_path_for
from vidstyle.media.probe import probe
from vidstyle.media.segments import Segment, warmup_seconds
from vidstyle.progress import ProgressCallback, ProgressEvent

# Ray's own default for tasks; a worker that dies four times in a row is a bug or a
# poisoned input, not bad luck.
MAX_RETRIES = 3
# Errors worth another attempt: I/O on shared storage (NFS hiccups, a full scratch disk
# that a cleaner frees), memory pressure. ConnectionError and TimeoutError are OSErrors.
TRANSIENT_ERRORS = (OSError, MemoryError)
# How often the driver looks at finished tasks, progress and the cancel flag.
POLL_SECONDS = 0.25


@dataclass
class Outcome:
    """What one task did. Errors travel as text: VidstyleError subclasses carry
    constructor arguments that do not survive pickling, and the CLI prints one line."""

    src: Path
    dst: Path
    result: VideoResult | None = None
    error: str | None = None
    cancelled: bool = False
    node_id: str = ""
    pid: int = 0
    recovered: bool = False  # an earlier, killed attempt had already written the output


@ray.remote(num_cpus=0)
class ProgressHub:
    """Collects workers' progress events until the driver drains them."""

    def __init__(self) -> None:
        self._events: list[tuple[Hashable, ProgressEvent]] = []

    def push(self, part: Hashable, event: ProgressEvent) -> None:
        self._events.append((part, event))

    def drain(self) -> list[tuple[Hashable, ProgressEvent]]:
        events, self._events = self._events, []
        return events


# -- tasks (run on workers) ---------------------------------------------------------------


def _outcome(src: Path, dst: Path) -> Outcome:
    return Outcome(src, dst, node_id=ray.get_runtime_context().get_node_id(), pid=os.getpid())


def _use_assigned_cpus() -> None:
    """Torch threads = CPUs Ray gave this task, so tasks sharing a node do not fight."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))


def _reporter(hub, part: Hashable) -> ProgressCallback | None:
    if hub is None:
        return None
    return lambda event: hub.push.remote(part, event)


def _written_since(dst: Path, prior: str | None) -> bool:
    """True when `dst` changed since the driver submitted the job: an earlier attempt of
    this task renamed its output into place and then died before returning."""
    now = file_signature(dst)
    return now is not None and now != prior


def _recovered(outcome: Outcome, settings: Settings) -> Outcome:
    info = probe(outcome.dst)
    outcome.recovered = True
    outcome.result = VideoResult.written_earlier(
        outcome.src, outcome.dst, info.frames or 0,
        "written by an earlier attempt whose worker died before reporting",
    )
    return outcome


def stylize_file(job: Job, settings: Settings, network: nn.Module | None,
                 prior: str | None, hub) -> Outcome:
    """One whole file on one worker."""
    outcome = _outcome(job.src, job.dst)
    _use_assigned_cpus()
    try:
        if _written_since(job.dst, prior):
            return _recovered(outcome, settings)
        with Stylizer(settings, network=network) as stylizer:
            outcome.result = stylizer.video(
                job.src, job.dst, on_progress=_reporter(hub, (job.src, "file"))
            )
    except Cancelled:
        outcome.cancelled = True
    except VidstyleError as exc:
        outcome.error = str(exc)
    return outcome


def stylize_segment(src: Path, seg_path: Path, segment: Segment, settings: Settings,
                    warmup: float, network: nn.Module | None, hub) -> Outcome:
    """The video of one segment, rebased to zero, into `seg_path` (a temp file of ours)."""
    outcome = _outcome(src, seg_path)
    _use_assigned_cpus()
    try:
        with Stylizer(settings, network=network) as stylizer:
            outcome.result = segmented.stylize_segment(
                stylizer, settings, src, probe(src), segment, seg_path, warmup=warmup,
                on_progress=_reporter(hub, (src, segment.index)),
            )
    except Cancelled:
        outcome.cancelled = True
    except VidstyleError as exc:
        outcome.error = str(exc)
    return outcome


def join_file(job: Job, seg_paths: list[Path], segments: list[Segment], settings: Settings,
              prior: str | None) -> Outcome:
    """Remux the segments into the final output, atomically; no decoding, no encoding."""
    outcome = _outcome(job.src, job.dst)
    started = time.monotonic()
    try:
        if _written_since(job.dst, prior):
            return _recovered(outcome, settings)
        frames, report = segmented.join(seg_paths, segments, probe(job.src), job.dst,
                                        settings)
        outcome.result = VideoResult.from_mux(
            report, src=job.src, dst=job.dst, frames=frames,
            seconds=time.monotonic() - started,
        )
    except VidstyleError as exc:
        outcome.error = str(exc)
    return outcome


# -- the driver ---------------------------------------------------------------------------


def task_resources(settings: Settings, cpus_per_task: float) -> tuple[dict, Settings]:
    """What each task asks Ray for, and the settings it runs with there.

    CUDA work asks for one whole GPU (Ray then shows the task only that GPU, as cuda:0);
    everything else asks for `cpus_per_task` CPUs.
    """
    wants_cuda = settings.device.startswith("cuda") or (
        settings.device == "auto" and ray.cluster_resources().get("GPU", 0) >= 1
    )
    if wants_cuda:
        return {"num_gpus": 1, "num_cpus": 1}, settings.replace(device="cuda")
    return {"num_cpus": cpus_per_task}, settings


@dataclass
class _FileWork:
    """Book-keeping for one input while its tasks run."""

    job: Job
    started: float
    segments: list[Segment] = field(default_factory=list)
    seg_paths: list[Path] = field(default_factory=list)
    seg_outcomes: dict[int, Outcome] = field(default_factory=dict)
    error: str | None = None


class RayExecutor(Executor):
    """Runs batches on a Ray cluster: `address` None starts a local one, ``auto`` joins
    the cluster this machine is part of, ``HOST:PORT`` a given head node."""

    def __init__(
        self,
        address: str | None = None,
        *,
        network: nn.Module | None = None,
        cpus_per_task: float = 1,
        max_retries: int = MAX_RETRIES,
        segments: int | None = None,
        segment_seconds: float | None = None,
        warmup_frames: int | None = None,
        init_options: dict | None = None,
    ) -> None:
        if segments is not None and segment_seconds is not None:
            raise SettingsError("give --segments or --segment-seconds, not both")
        self.address = address
        self.network = network
        self.cpus_per_task = cpus_per_task
        self.max_retries = max_retries
        self.segments = segments
        self.segment_seconds = segment_seconds
        self.warmup_frames = warmup_frames
        self.init_options = init_options or {}
        # Node ids that ran each task of the last batch (for tests and reports).
        self.last_outcomes: list[Outcome] = []

    def connect(self) -> None:
        """Join (or start) the cluster, unless this process is already connected."""
        if ray.is_initialized():
            return
        # Workers' own output would tear through the progress display; their errors
        # come back as task outcomes.
        options = {"log_to_driver": False, "logging_level": "WARNING", **self.init_options}
        if self.address is None:
            options.setdefault("include_dashboard", False)
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.address or "this machine"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SettingsError(f"cannot connect to a Ray cluster at {where} ({reason})") from None

    # -- batches ---------------------------------------------------------------------------

    def run(self, jobs: Sequence[Job], settings: Settings,
            hooks: RunHooks = NO_HOOKS) -> BatchResult:
        settings = settings.validate()
        self.connect()
        run = _BatchRun(self, settings, hooks)
        inputs = [job.src for job in jobs]
        try:
            for job in jobs:
                try:  # before any task: no output may replace an input of the run
                    check_output_path(job.dst, settings.output.overwrite, inputs=inputs)
                except VidstyleError as exc:
                    run.batch.failures.append((job.src, str(exc)))
                    hooks.file_done(job.src, None, str(exc))
                    continue
                if self.segments is None and self.segment_seconds is None:
                    run.submit_file(job)
                else:
                    run.submit_segments(job, self.segments, self.segment_seconds)
            run.wait_all()
        finally:
            run.clean_up()
        self.last_outcomes = run.outcomes
        return run.batch


class _BatchRun:
    """One batch in flight: submits tasks, reacts as they finish, feeds the display."""

    def __init__(self, executor: RayExecutor, settings: Settings, hooks: RunHooks) -> None:
        self.executor = executor
        self.resources, self.settings = task_resources(settings, executor.cpus_per_task)
        self.hooks = hooks
        self.cancel = hooks.cancel or threading.Event()
        self.progress = ClusterProgress(hooks.on_progress)
        self.hub = ProgressHub.remote() if hooks.on_progress is not None else None
        self.network_ref = ray.put(executor.network) if executor.network is not None else None
        self.batch = BatchResult()
        self.outcomes: list[Outcome] = []
        self.pending: dict[ray.ObjectRef, tuple[str, _FileWork, int | None]] = {}
        self.works: list[_FileWork] = []
        self.started_at = time.time()
        self.options = {
            "max_retries": executor.max_retries,
            "retry_exceptions": list(TRANSIENT_ERRORS),
        }

    # -- submitting ------------------------------------------------------------------------

    def _remote(self, function, **resources):
        return _as_task(function).options(**self.options, **resources)

    def submit_file(self, job: Job) -> None:
        work = _FileWork(job, time.monotonic())
        self.works.append(work)
        ref = self._remote(stylize_file, **self.resources).remote(
            job, self.settings, self.network_ref, file_signature(job.dst), self.hub
        )
        self.pending[ref] = ("file", work, None)

    def submit_segments(self, job: Job, count: int | None, seconds: float | None) -> None:
        work = _FileWork(job, time.monotonic())
        self.works.append(work)
        try:
            info = probe(job.src)
            work.segments = segmented.plan(job.src, self.settings, count=count,
                                           seconds=seconds)
        except VidstyleError as exc:
            self._file_failed(work, str(exc))
            return
        self.progress.expect(job.src, sum(s.frames for s in work.segments))
        warmup = warmup_seconds(self.settings, info, self.executor.warmup_frames)
        for segment in work.segments:
            seg_path = segment_path(job.dst, segment.index)
            work.seg_paths.append(seg_path)
            ref = self._remote(stylize_segment, **self.resources).remote(
                job.src, seg_path, segment, self.settings, warmup, self.network_ref, self.hub
            )
            self.pending[ref] = ("segment", work, segment.index)

    def _submit_join(self, work: _FileWork) -> None:
        # I/O only: a fraction of a CPU, so a join never waits behind stylizing tasks.
        ref = self._remote(join_file, num_cpus=0.25).remote(
            work.job, work.seg_paths, work.segments, self.settings,
            file_signature(work.job.dst),
        )
        self.pending[ref] = ("join", work, None)

    # -- waiting ---------------------------------------------------------------------------

    def wait_all(self) -> None:
        try:
            while self.pending:
                ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    self._finished(ref)
                self._drain_progress()
                if self.cancel.is_set():
                    raise Cancelled("cancelled: running tasks were stopped")
        except (KeyboardInterrupt, Cancelled):
            for ref in self.pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            self.pending.clear()
            raise
        self._drain_progress()

    def _drain_progress(self) -> None:
        if self.hub is None:
            return
        for part, event in ray.get(self.hub.drain.remote()):
            self.progress.update(part, event)

    def _finished(self, ref: ray.ObjectRef) -> None:
        kind, work, segment = self.pending.pop(ref)
        try:
            outcome: Outcome = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            raise Cancelled(f"{work.job.src}: cancelled") from None
        except ray.exceptions.RayError as exc:
            outcome = Outcome(work.job.src, work.job.dst, error=_task_error(work.job.src, exc))
        self.outcomes.append(outcome)
        if outcome.cancelled:
            raise Cancelled(f"{work.job.src}: cancelled")
        if outcome.error is not None:
            self._file_failed(work, outcome.error)
        elif kind == "segment":
            work.seg_outcomes[segment] = outcome
            if len(work.seg_outcomes) == len(work.segments) and work.error is None:
                self._submit_join(work)
        else:
            self._file_done(work, outcome)

    def _file_done(self, work: _FileWork, outcome: Outcome) -> None:
        result = outcome.result
        if work.segments:
            # The file took from its first segment's start to the join's end; it ran on
            # the device of its segments.
            first = work.seg_outcomes[0].result
            result.seconds = time.monotonic() - work.started
            result.device, result.precision = first.device, first.precision
            remove_files(work.seg_paths)
        self.progress.finish(work.job.src, result.frames)
        self.batch.results.append(result)
        self.hooks.file_done(work.job.src, result, None)

    def _file_failed(self, work: _FileWork, error: str) -> None:
        if work.error is not None:
            return  # another segment of the same file already failed it
        work.error = error
        for ref, (_, other, _) in list(self.pending.items()):
            if other is work:  # the rest of a failed file's segments are wasted work
                ray.cancel(ref, force=True)
                self.pending.pop(ref)
        remove_files(work.seg_paths)
        self.batch.failures.append((work.job.src, error))
        self.hooks.file_done(work.job.src, None, error)

    # -- cleaning up -----------------------------------------------------------------------

    def clean_up(self) -> None:
        """Delete segment files, and temp files that killed attempts left beside outputs
        of this batch (only those created since it started: a concurrent job elsewhere
        keeps its own)."""
        if self.hub is not None:
            ray.kill(self.hub)
        for work in self.works:
            remove_files(work.seg_paths)
            for path in [work.job.dst, *work.seg_paths]:
                remove_files(orphan_temps(path, since=self.started_at))


@functools.cache
def _as_task(function):
    """The Ray remote function for `function`, made once (each `ray.remote` re-exports)."""
    return ray.remote(function)


def segment_path(dst: Path, index: int) -> Path:
    """A hidden temp name beside the output for one segment's video.

    Named like the API's temp files (marker + pid) so that a watcher sweeping leftovers
    of dead processes recognises it.
    """
    temp = temp_path_for(dst)
    return temp.with_name(f"{temp.stem}-seg{index:04d}{dst.suffix}")


def orphan_temps(path: Path, since: float) -> list[Path]:
    """Temp files of `path` (``.<name>.vidstyle-tmp-*``) modified since `since`."""
    found = []
    for temp in temp_files(path.parent, path):
        with contextlib.suppress(OSError):
            if temp.stat().st_mtime >= since - 1.0:
                found.append(temp)
    return found


def remove_files(paths: Sequence[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _task_error(src: Path, exc: Exception) -> str:
    """One line for a task that failed outside vidstyle's own errors."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause
        return f"{src}: worker error ({type(cause).__name__}: {cause})".splitlines()[0]
    if isinstance(exc, (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError)):
        return f"{src}: the worker died on every attempt ({type(exc).__name__})"
    return f"{src}: {type(exc).__name__}: {exc}".splitlines()[0]
