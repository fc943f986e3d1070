"""The background builder: a detached, lowest-priority process that compiles a package.

`compile = "auto"` never makes a run wait for a compiler: on a cache miss the network is
exported (seconds) into a job folder and handed to ``python -m vidstyle.engines.compiled
JOB ENTRY``, which outlives the run. One builder per entry at a time: the job folder is the
lock; a failed build is recorded beside the entry and not retried for a while.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from vidstyle.engines.compiled.build import (
    export_float,
    export_with_reference,
    int8_candidate,
    package_exported,
)
from vidstyle.engines.compiled.cache import private_folder
from vidstyle.engines.compiled.key import PackageKey

# A job folder older than this whose builder cannot be seen belongs to a builder that died
# (machine restarted, killed): the next run claims it again. Builds measured 4-6 minutes.
BUILD_STALE_SECONDS = 3 * 3600
# A build that failed is not retried for this long (the key changes with a new PyTorch or
# processor, which gets its own try): a broken compiler should not cost every run an export.
FAILED_RETRY_SECONDS = 7 * 24 * 3600
FLOAT_PROGRAM = "program-float32.pt2"


def job_folder(entry: Path) -> Path:
    return entry.parent / f".job-{entry.name}"


def failed_marker(entry: Path) -> Path:
    return entry.parent / f".failed-{entry.name}"


def recently_failed(entry: Path) -> bool:
    try:
        return time.time() - failed_marker(entry).stat().st_mtime < FAILED_RETRY_SECONDS
    except OSError:
        return False


def builder_alive(job: Path) -> bool:
    """Whether the job folder's builder still runs (or is still being started)."""
    try:
        age = time.time() - job.stat().st_mtime
    except OSError:
        return False
    if age >= BUILD_STALE_SECONDS:
        return False
    try:
        pid = int((job / "pid").read_text())
    except FileNotFoundError:
        return True  # claimed a moment ago: its builder is being started
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a live process of someone else's: a reused pid, or shared storage
    return True


def claim_job(entry: Path) -> Path | None:
    """The job folder for `entry`, made by this call, or None if another builder has it."""
    job = job_folder(entry)
    private_folder(entry.parent)
    for _ in range(2):
        try:
            job.mkdir(mode=0o700)
            return job
        except FileExistsError:
            if builder_alive(job):
                return None
            shutil.rmtree(job, ignore_errors=True)  # a dead builder's leftovers
    return None


def start_background_build(module: nn.Module, example: torch.Tensor, entry: Path,
                           key: PackageKey) -> bool:
    """Export `module` now and leave compiling it to a detached, lowest-priority process
    (`python -m vidstyle.engines.compiled JOB ENTRY`) that outlives this one. False if
    another builder has the entry, or its build failed lately."""
    if recently_failed(entry):
        return False
    job = claim_job(entry)
    if job is None:
        return False
    try:
        from safetensors.torch import save_file

        exported, references = export_with_reference(module, example)
        with warnings.catch_warnings():
            # Channels-last weights make the archive writer warn that it keeps one
            # strided view; read back, the graph gave the same output (47 dB from float32
            # both ways for the 26-style network), and the builder checks it again.
            warnings.filterwarnings("ignore", message="No complete tensor found")
            torch.export.save(exported, str(job / "program.pt2"))
            if int8_candidate(module, example):
                torch.export.save(export_float(module, example), str(job / FLOAT_PROGRAM))
        save_file({"example": example.contiguous().cpu(),
                   **{name: t.contiguous().cpu() for name, t in references.items()}},
                  str(job / "check.safetensors"))
        (job / "device").write_text(str(example.device))
        # A package is built for its example's strides: a channels-last graph fed the
        # contiguous copy safetensors keeps measured 10.0 dB from eager.
        channels_last = example.is_contiguous(memory_format=torch.channels_last)
        (job / "layout").write_text("channels_last" if channels_last else "contiguous")
        (job / "key.json").write_text(json.dumps(asdict(key)))
        # The speed check runs on the threads this run's network uses.
        (job / "threads").write_text(str(torch.get_num_threads()))
        with open(job / "build.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "vidstyle.engines.compiled", str(job), str(entry)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        (job / "pid").write_text(str(process.pid))
    except BaseException:
        shutil.rmtree(job, ignore_errors=True)
        raise
    return True


def run_job(job: Path, entry: Path) -> None:
    """The builder's work: compile the job's exported graph into `entry`; on failure leave
    the reason in the failed marker (next to the entry) so runs stop asking for a while."""
    from safetensors.torch import load_file

    try:
        key = PackageKey(**json.loads((job / "key.json").read_text()))
        with contextlib.suppress(OSError, ValueError):
            torch.set_num_threads(int((job / "threads").read_text()))
        exported = torch.export.load(str(job / "program.pt2"))
        device = torch.device((job / "device").read_text())
        saved = load_file(str(job / "check.safetensors"))
        check = {name: tensor.to(device) for name, tensor in saved.items()}
        example = check["example"]
        if (job / "layout").read_text() == "channels_last":
            example = example.contiguous(memory_format=torch.channels_last)
        float_path = job / FLOAT_PROGRAM
        float_graph = torch.export.load(str(float_path)) if float_path.exists() else None
        with torch.no_grad():
            package_exported(exported, example, check, entry, key, float_graph)
    except Exception as exc:  # noqa: BLE001 - recorded for the next run, then re-raised
        failed_marker(entry).write_text(f"{type(exc).__name__}: {exc}\n")
        raise
    finally:
        shutil.rmtree(job, ignore_errors=True)


def lowest_priority() -> None:
    """The builder yields every core to anything else the machine does (the run that
    started it first of all)."""
    with contextlib.suppress(AttributeError, OSError):
        os.nice(19)
    with contextlib.suppress(AttributeError, OSError):  # Linux: idle I/O class as well
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def main(argv: list[str] | None = None) -> int:
    """The background builder: ``python -m vidstyle.engines.compiled JOB ENTRY``."""
    job, entry = (Path(arg) for arg in (argv or sys.argv[1:]))
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # into the job's log
    lowest_priority()
    run_job(job, entry)
    return 0
