"""The default executor: files one after another in this process, through one Stylizer
(so the network is loaded once for the whole batch)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from vidstyle.api import Stylizer
from vidstyle.config import Settings
from vidstyle.errors import Cancelled, SettingsError, VidstyleError
from vidstyle.executors.base import NO_HOOKS, BatchResult, Executor, Job, RunHooks

# One process stylizes segments no faster than the whole file, and the temporal warm-up
# makes it slower: segments only pay off in parallel.
SEGMENTS_NEED_RAY = "--segments/--segment-seconds need --executor ray"


class LocalExecutor(Executor):
    """Runs a batch in-process; one bad file is reported and the rest still run."""

    def __init__(self, *, network: nn.Module | None = None, segments: int | None = None,
                 segment_seconds: float | None = None) -> None:
        if segments is not None or segment_seconds is not None:
            raise SettingsError(SEGMENTS_NEED_RAY)
        self.network = network

    def run(self, jobs: Sequence[Job], settings: Settings,
            hooks: RunHooks = NO_HOOKS) -> BatchResult:
        batch = BatchResult()
        inputs = [job.src for job in jobs]  # no output may replace any input of the run
        with Stylizer(settings, network=self.network) as stylizer:
            for job in jobs:
                try:
                    result = stylizer.video(job.src, job.dst, on_progress=hooks.on_progress,
                                            cancel=hooks.cancel, inputs=inputs)
                except Cancelled:
                    raise
                except VidstyleError as exc:
                    batch.failures.append((job.src, str(exc)))
                    hooks.file_done(job.src, None, str(exc))
                    continue
                batch.results.append(result)
                hooks.file_done(job.src, result, None)
        return batch
