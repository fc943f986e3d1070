"""What every executor shares: `Job`, `RunHooks`, `BatchResult` and the `Executor` interface."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vidstyle.config import Settings
from vidstyle.errors import VidstyleError
from vidstyle.job import VideoResult
from vidstyle.progress import ProgressCallback

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
