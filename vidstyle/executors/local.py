"""The default executor: files one after another in this process, through one Stylizer
(so the network is loaded once for the whole batch)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from vidstyle.api import Stylizer, VideoResult
from vidstyle.config import Settings
from vidstyle.errors import Cancelled, SettingsError, VidstyleError
from vidstyle.executors import BatchResult, FileDoneCallback, Job
from vidstyle.progress import ProgressCallback

# One process stylizes segments no faster than the whole file, and the temporal warm-up
# makes it slower: segments only pay off in parallel.
SEGMENTS_NEED_RAY = "--segments/--segment-seconds need --executor ray"


class LocalExecutor:
    """Runs a batch in-process; one bad file is reported and the rest still run."""

    def __init__(self, *, network: nn.Module | None = None, segments: int | None = None,
                 segment_seconds: float | None = None) -> None:
        if segments is not None or segment_seconds is not None:
            raise SettingsError(SEGMENTS_NEED_RAY)
        self.network = network

    def process(self, src: Path, dst: Path, settings: Settings, *,
                on_progress: ProgressCallback | None = None,
                cancel: threading.Event | None = None) -> VideoResult:
        """One job, in the shape of the watch loop's `process` callable."""
        return Stylizer(settings, network=self.network).video(
            src, dst, on_progress=on_progress, cancel=cancel
        )

    def run(
        self,
        jobs: Sequence[Job],
        settings: Settings,
        *,
        on_progress: ProgressCallback | None = None,
        on_file_done: FileDoneCallback | None = None,
        segments: int | None = None,
        segment_seconds: float | None = None,
        cancel: threading.Event | None = None,
    ) -> BatchResult:
        if segments is not None or segment_seconds is not None:
            raise SettingsError(SEGMENTS_NEED_RAY)
        stylizer = Stylizer(settings, network=self.network)
        batch = BatchResult()
        inputs = [job.src for job in jobs]  # no output may replace any input of the run
        for job in jobs:
            try:
                result = stylizer.video(job.src, job.dst, on_progress=on_progress,
                                        cancel=cancel, inputs=inputs)
            except Cancelled:
                raise
            except VidstyleError as exc:
                batch.failures.append((job.src, str(exc)))
                if on_file_done is not None:
                    on_file_done(job.src, None, str(exc))
                continue
            batch.results.append(result)
            if on_file_done is not None:
                on_file_done(job.src, result, None)
        return batch
