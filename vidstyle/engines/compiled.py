"""Compiled once per machine: a style network ahead-of-time compiled, kept in the user's cache.

`torch.compile` fuses the elementwise passes between the convolutions (norm, ReLU, padding,
residual adds) but recompiles in every process, tens of seconds before the first frame.
AOTInductor (`torch._inductor.aoti_compile_and_package`) writes the same compiled graph as
a package, a zip holding a shared library and the weights, that a later process loads in
about a second. So the first run of a network at a frame size on a machine compiles, and
every later one loads the package.

A package is code: loading it runs its shared library. So an entry is loaded only if

* its key matches: network (class and parameter shapes), a hash of the weights, the frame
  bucket, the batch, the precision, the library versions and the processor (a package built
  for another CPU's instruction set or another GPU would crash or be slow);
* its manifest's sha256 matches the package's bytes (a truncated or corrupted file);
* it lives in the user's own cache folder, owned by this user and writable by no one else.

Anything else (missing, corrupt, stale, unreadable) is deleted and rebuilt; a package that
fails to build or load leaves the network running eagerly, with a warning. After building,
the package's output is compared against the float32 eager network's on the same input
before it is kept (`required_psnr`), so a miscompiled graph never becomes an entry.

Building takes a minute on a quiet 2-core CPU (the 26-style network at 640x480) and four
or more on a busy one, so `compile = "auto"`, the default, never makes a run wait for it:
on a cache miss the network is exported (seconds) and handed to a detached builder process
at the lowest CPU priority, the run goes on eagerly, and it switches to the package if the
build ends before the run does; every later run starts compiled. `"on"` builds in the foreground and
waits. One builder per entry at a time: the job folder is the lock.

int8 (CPU, bf16 runs, torchao installed): the builder also makes an int8 package (PT2E
static quantization for x86 from torchao, oneDNN/VNNI kernels, bf16 between them),
calibrated on the run's first frame and three variants of it, and keeps it instead of the
bf16 one only if it clears the same PSNR bar on that frame *and* on a frame the calibration
did not see, and is faster. Johnson's network (the named styles) at 640x480 on this
project's 2-core AVX512-BF16 machine: builds recorded int8 at 1.53-1.68x eager, 41 dB from
float32 (46-59 dB on other clips' frames), and the README's first command took 79-80 s
against 105-110 s uncompiled; the 26-style network falls to 20 dB in int8 and keeps its
bf16 package (docs/benchmarks.md, "int8").

Shape buckets: frames are padded (reflect) up to multiples of `BUCKET` pixels, so one
package serves every frame size that rounds to the same bucket; the padding is cropped off.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util as importlib_util
import json
import logging
import math
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from vidstyle.files import user_cache_dir

log = logging.getLogger(__name__)

# Frame sides are padded up to a multiple of this: 640x360 runs as 640x368 (2% more pixels),
# 1920x1080 as 1920x1088 (0.7%), while every size in a 16-pixel range shares one package.
BUCKET = 16
# Bump when the way packages are built changes, so entries from an older recipe are rebuilt.
RECIPE = "aoti-v2"  # v2: an int8 candidate where torchao is installed
PACKAGE_NAME = "network.pt2"
MANIFEST_NAME = "manifest.json"
# A freshly built package must reproduce the float32 eager output at least this well (PSNR,
# dB, [0, 1] pixels): the bar issue 16 sets for any other backend. A max-abs bar does not
# work for bf16: eager and compiled bf16 each round differently, and single pixels of the
# 26-style network at 640x368 differed by 0.076 while the pictures were alike.
MIN_PSNR_DB = 35.0
# ...or, where the precision itself costs more than that, be within this of the eager
# network at the same precision: the 26-style network in bf16 on frame 0 of
# samples/cup.mp4 is 33.7 dB from float32 eagerly and 33.4 dB compiled. Compiling must
# not add error; it cannot remove what bf16 puts there.
PRECISION_MARGIN_DB = 1.0
# A job folder older than this whose builder cannot be seen belongs to a builder that died
# (machine restarted, killed): the next run claims it again. Builds measured 4-6 minutes.
BUILD_STALE_SECONDS = 3 * 3600
# A build that failed is not retried for this long (the key changes with a new PyTorch or
# processor, which gets its own try): a broken compiler should not cost every run an export.
FAILED_RETRY_SECONDS = 7 * 24 * 3600
# How often a run that started a background build looks for the finished package.
POLL_SECONDS = 5.0
# `compile = "auto"` uses a package only where the build measured it at least this much
# faster than eager on this machine. Compiling does not always win: Johnson's network in
# bf16 on one thread of this project's 2-core machine ran compiled at 0.89x eager (640x360)
# and 0.88x (1080p), while the 26-style network gained 1.26-1.74x (docs/benchmarks.md).
MIN_SPEEDUP = 1.03
# Alternating eager and compiled calls per side when measuring that, best of each.
SPEED_ROUNDS = 3
# Whether builders try an int8 package (module docstring); tests turn it off to keep
# their builds short.
INT8 = True
FLOAT_PROGRAM = "program-float32.pt2"


def compiled_cache_folder() -> Path:
    """Where compiled packages live: ``$VIDSTYLE_COMPILE_CACHE`` or the user cache."""
    override = os.environ.get("VIDSTYLE_COMPILE_CACHE")
    return Path(override) if override else user_cache_dir() / "compiled"


def processor_name(device: torch.device) -> str:
    """What a package was built for: the GPU's name and capability, or the CPU's model, the
    vector instruction set PyTorch dispatches to and a digest of the CPU's feature flags
    (code built for AVX512-BF16 would die of an illegal instruction on a CPU without it,
    which no exception handler catches)."""
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"cuda:{torch.cuda.get_device_name(device)}:sm{major}{minor}"
    model, flags = platform.processor() or platform.machine(), ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name" and model == platform.machine():
                model = value.strip()
            elif name.strip() in ("flags", "Features") and not flags:
                flags = " ".join(sorted(value.split()))
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"cpu:{model}:{torch.backends.cpu.get_cpu_capability()}:{digest}"


def weights_digest(network: nn.Module) -> str:
    """sha256 over every parameter and buffer (names, shapes, dtypes, bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def network_name(network: nn.Module) -> str:
    """The network's class and layer shapes: two networks sharing this share a graph."""
    shapes = ",".join(f"{k}{tuple(v.shape)}" for k, v in sorted(network.state_dict().items()))
    inner = type(network).__module__ + "." + type(network).__qualname__
    return f"{inner}#{hashlib.sha256(shapes.encode()).hexdigest()[:16]}"


def bucket_size(height: int, width: int, multiple: int = 1) -> tuple[int, int]:
    """The padded frame size a package is built for: both sides rounded up to `BUCKET`
    (and to the network's own `multiple`)."""
    step = BUCKET * multiple // _gcd(BUCKET, multiple)
    return -(-height // step) * step, -(-width // step) * step


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


@dataclass(frozen=True)
class PackageKey:
    """Everything a compiled package depends on; its digest names the cache entry."""

    network: str
    weights: str
    batch: int
    height: int
    width: int
    precision: str
    processor: str
    torch: str
    python: str
    recipe: str = RECIPE

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:32]


def package_key(network: nn.Module, shape: tuple[int, int, int, int], dtype: torch.dtype,
                device: torch.device) -> PackageKey:
    batch, _, height, width = shape
    return PackageKey(
        network=network_name(network), weights=weights_digest(network), batch=batch,
        height=height, width=width, precision=str(dtype).removeprefix("torch."),
        processor=processor_name(device), torch=torch.__version__,
        python=platform.python_version(),
    )


class Autocast(nn.Module):
    """The network under autocast, float32 out: the graph that gets compiled."""

    def __init__(self, network: nn.Module, dtype: torch.dtype, device_type: str) -> None:
        super().__init__()
        self.network = network
        self.dtype = dtype
        self.device_type = device_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enabled = self.dtype != torch.float32
        with torch.autocast(self.device_type, dtype=self.dtype, enabled=enabled):
            return self.network(x).float()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_private(path: Path) -> bool:
    """Owned by this user and writable by no one else (where the OS has such owners)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return False
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return False
    return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def trusted_package(entry: Path, key: PackageKey) -> Path | None:
    """The entry's package if every check in the module docstring passes, else None."""
    package, manifest = entry / PACKAGE_NAME, entry / MANIFEST_NAME
    try:
        if not all(is_private(p) for p in (entry.parent, entry, package, manifest)):
            return None
        recorded = json.loads(manifest.read_text())
        if recorded.get("key") != asdict(key):
            return None
        if recorded.get("sha256") != file_sha256(package):
            return None
    except (OSError, ValueError):
        return None
    return package


def private_folder(path: Path) -> Path:
    """Create `path` (and parents) readable and writable by this user only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        path.chmod(0o700)
    return path


def build_package(module: nn.Module, example: torch.Tensor, entry: Path,
                  key: PackageKey) -> Path:
    """Export, compile and package `module` for `example`'s shape, verified against the
    eager output, written atomically to `entry` (a folder) with its manifest."""
    exported, references = export_with_reference(module, example)
    float_graph = export_float(module, example) if int8_candidate(module, example) else None
    return package_exported(exported, example, references, entry, key, float_graph)


def export_with_reference(module: nn.Module, example: torch.Tensor):
    """The exported graph of `module` (an `Autocast`) and what its package is checked
    against on `example`: the float32 eager output ("expected") and the eager output at
    the module's own precision ("eager")."""
    with torch.inference_mode():
        references = {
            "expected": Autocast(module.network, torch.float32, example.device.type)(example),
            "eager": module(example),
        }
    return torch.export.export(module, (example,)), references


def int8_candidate(module: nn.Module, example: torch.Tensor) -> bool:
    """Whether an int8 package is worth trying: a bf16 run on the CPU, torchao installed."""
    return (INT8 and example.device.type == "cpu" and module.dtype == torch.bfloat16
            and importlib_util.find_spec("torchao") is not None)


def export_float(module: nn.Module, example: torch.Tensor):
    """The float32 graph that int8 quantization starts from: the bare network (the
    quantizer does not look inside an autocast region, even a disabled one)."""
    return torch.export.export(module.network, (example,))


def calibration_frames(example: torch.Tensor) -> list[torch.Tensor]:
    """What the int8 ranges are observed on: the run's first frame, mirrored, darker and
    brighter (a video's later frames move, and its exposure drifts)."""
    return [example, example.flip(-1), example * 0.8, (example * 1.25).clamp(0, 1)]


def unseen_frame(example: torch.Tensor) -> torch.Tensor:
    """A frame the calibration did not see, for the int8 check: the first frame upside
    down, shifted by a quarter of its size, 10% darker."""
    height, width = example.shape[-2:]
    moved = example.flip(-2).roll((height // 4, width // 4), dims=(-2, -1)) * 0.9
    return moved.contiguous(memory_format=torch.channels_last) if example.is_contiguous(
        memory_format=torch.channels_last) else moved.contiguous()


def quantized_int8(float_graph, example: torch.Tensor) -> nn.Module:
    """PT2E static int8 for x86 (torchao's `X86InductorQuantizer`: per-channel weights,
    per-tensor activations), calibrated on `calibration_frames`, bf16 between the int8
    convolutions (1.43x eager bf16 against 1.17x for int8 alone, Johnson's network at
    640x480, `benchmarks/quantized.py`)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    quantizer = X86InductorQuantizer()
    quantizer.set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(float_graph.module(), quantizer)
    for frame in calibration_frames(example):
        prepared(frame)
    return Autocast(convert_pt2e(prepared), torch.bfloat16, "cpu")


def required_psnr(references: dict[str, torch.Tensor]) -> float:
    """The bar a package must clear: `MIN_PSNR_DB`, or eager's own distance from float32
    less `PRECISION_MARGIN_DB` where the precision alone falls short of it."""
    own = psnr(references["eager"], references["expected"])
    return min(MIN_PSNR_DB, own - PRECISION_MARGIN_DB)


def package_exported(exported, example: torch.Tensor, references: dict[str, torch.Tensor],
                     entry: Path, key: PackageKey, float_graph=None) -> Path:
    """Compile an exported graph into `entry`, kept only if it reproduces the float32
    output as well as `required_psnr` asks. With `float_graph` (the float32 export) an int8
    package is tried next and replaces that entry where it clears the same bar and is
    faster; the first entry is in place meanwhile, so a run waiting for it switches now."""
    from torch._inductor import aoti_compile_and_package

    bar = required_psnr(references)
    eager = exported.module()
    with staging_folder(entry) as staging:
        package = staging / PACKAGE_NAME
        aoti_compile_and_package(exported, package_path=str(package))
        with torch.inference_mode():
            got = load_package(package, example.device)(example)
        quality = psnr(got, references["expected"])
        if not quality >= bar:
            raise RuntimeError(f"compiled output is {quality:.1f} dB from float32 eager "
                               f"(needs {bar:.1f})")
        speedup = measured_speedup(eager, load_package(package, example.device), example)
        variant = "bf16" if key.precision == "bfloat16" else key.precision
        install_entry(staging, entry, key, quality, speedup, variant)
    if float_graph is not None:
        with staging_folder(entry) as staging:
            int8 = try_int8(float_graph, example, bar, staging / PACKAGE_NAME)
            if int8 is not None:
                # int8 against the entry's package, alternating: the same load for both.
                gain = measured_speedup(load_package(entry / PACKAGE_NAME, example.device),
                                        load_package(int8[0], example.device), example)
                log.info("int8: %.1f dB, %.2fx the bf16 package (%.2fx eager)", int8[1],
                         gain, speedup)
                if gain > 1.0:
                    install_entry(staging, entry, key, int8[1], speedup * gain, "int8")
    return entry / PACKAGE_NAME


@contextlib.contextmanager
def staging_folder(entry: Path):
    """A private folder beside `entry` to build in, removed afterwards (it is gone already
    where `install_entry` moved it into place)."""
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=private_folder(entry.parent)))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_entry(staging: Path, entry: Path, key: PackageKey, quality: float,
                  speedup: float, variant: str) -> None:
    """Write the manifest of the package in `staging` and move the folder to `entry` in
    one rename (replacing an older entry), private to this user."""
    package = staging / PACKAGE_NAME
    package.chmod(0o600)
    manifest = {"key": asdict(key), "sha256": file_sha256(package), "psnr_db": quality,
                "speedup": speedup, "variant": variant, "threads": torch.get_num_threads()}
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    (staging / MANIFEST_NAME).chmod(0o600)
    staging.chmod(0o700)
    shutil.rmtree(entry, ignore_errors=True)
    try:
        os.replace(staging, entry)
    except OSError:
        if trusted_package(entry, key) is None:  # not another process's finished entry
            raise


def try_int8(float_graph, example: torch.Tensor, bar: float,
             path: Path) -> tuple[Path, float] | None:
    """An int8 package at `path` and its worse PSNR of two frames, or None where it cannot
    be built or misses `bar` on the first frame or on `unseen_frame` (the 26-style network:
    20 dB). Any failure here only means the bf16 package stays."""
    import torch._inductor.config as inductor_config
    from torch._inductor import aoti_compile_and_package

    try:
        with torch.no_grad():
            module = quantized_int8(float_graph, example)
            program = torch.export.export(module, (example,))
            # Freezing folds the weights into constants: what lets Inductor lower the
            # quantize/dequantize pairs to oneDNN's int8 convolutions.
            with inductor_config.patch(freezing=True):
                aoti_compile_and_package(program, package_path=str(path))
            runner, reference = load_package(path, example.device), float_graph.module()
            unseen = unseen_frame(example)
            quality = min(psnr(runner(x), reference(x)) for x in (example, unseen))
    except Exception as exc:  # noqa: BLE001 - optional: torchao/oneDNN missing or broken
        log.info("int8 package not built: %s: %s", type(exc).__name__, exc)
        return None
    if not quality >= bar:
        log.info("int8 package rejected: %.1f dB from float32 (needs %.1f)", quality, bar)
        return None
    return path, quality


def measured_speedup(eager, compiled, example: torch.Tensor) -> float:
    """Eager time over compiled time on `example`: the best of `SPEED_ROUNDS` alternating
    calls each (alternating, so a busy neighbour slows both alike)."""
    best = {"eager": math.inf, "compiled": math.inf}
    with torch.inference_mode():
        for _ in range(SPEED_ROUNDS):
            for name, run in (("eager", eager), ("compiled", compiled)):
                started = time.perf_counter()
                run(example)
                if example.device.type == "cuda":
                    torch.cuda.synchronize(example.device)
                best[name] = min(best[name], time.perf_counter() - started)
    return best["eager"] / best["compiled"]


def recorded_speedup(entry: Path) -> float | None:
    """The speedup the entry's build measured (None: not recorded)."""
    try:
        value = json.loads((entry / MANIFEST_NAME).read_text()).get("speedup")
    except (OSError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def eager_is_faster(entry: Path) -> bool:
    speedup = recorded_speedup(entry)
    return speedup is not None and speedup < MIN_SPEEDUP


# What a shape runs under "auto" where this machine measured its package slower than eager.
EAGER_FASTER = "eager is faster here"


# --- building in the background -----------------------------------------------------------

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


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio of two pictures in [0, 1], in dB (inf when equal)."""
    mse = (a.float().clamp(0, 1) - b.float().clamp(0, 1)).square().mean().item()
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


class LoadedPackage:
    """A package's shared library, loaded: one tensor in, one tensor out."""

    def __init__(self, package: Path, device: torch.device) -> None:
        index = -1 if device.type == "cpu" else (device.index or 0)
        # PyTorch's own loader, without importing Inductor (the public `aoti_load_package`
        # does): that import alone took longer than loading the package.
        self.loader = torch._C._aoti.AOTIModelPackageLoader(str(package), "model", False, 1,
                                                            index)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.loader.boxed_run([x])[0]


def load_package(package: Path, device: torch.device):
    if hasattr(torch._C, "_aoti") and hasattr(torch._C._aoti, "AOTIModelPackageLoader"):
        return LoadedPackage(package, device)
    from torch._inductor import aoti_load_package

    return aoti_load_package(str(package))


def load_or_build(network: nn.Module, example: torch.Tensor, dtype: torch.dtype,
                  folder: Path | None = None, *, background: bool = False):
    """A callable running `network` (under autocast to `dtype`) compiled for `example`'s
    shape, from the cache when a trusted entry is there, else built now (and kept). With
    `background` (`compile = "auto"`), a missing entry is left to a builder process instead
    and this returns `Pending` (the caller runs eagerly meanwhile), and an entry measured
    slower than eager gives `EAGER_FASTER`."""
    folder = folder or compiled_cache_folder()
    key = package_key(network, tuple(example.shape), dtype, example.device)
    entry = folder / key.digest()
    loaded = load_trusted(entry, key, example.device)
    if loaded is not None:
        return EAGER_FASTER if background and eager_is_faster(entry) else loaded
    module = Autocast(network, dtype, example.device.type).eval()
    if background:
        started = start_background_build(module, example, entry, key)
        return Pending(entry, key, started)
    package = build_package(module, example, entry, key)
    return load_package(package, example.device)


def load_trusted(entry: Path, key: PackageKey, device: torch.device):
    package = trusted_package(entry, key)
    if package is None:
        return None
    try:
        return load_package(package, device)
    except Exception:  # noqa: BLE001 - a package that cannot load is rebuilt
        return None


@dataclass
class Pending:
    """A package some builder process is making (or, `started` False, that this run left
    to another builder, or that failed lately): looked for every `POLL_SECONDS`."""

    entry: Path
    key: PackageKey
    started: bool
    next_look: float = 0.0

    def ready(self, device: torch.device):
        """The loaded package once it is there, else None (looking at most every
        `POLL_SECONDS`)."""
        now = time.monotonic()
        if now < self.next_look:
            return None
        self.next_look = now + POLL_SECONDS
        loaded = load_trusted(self.entry, self.key, device)
        return EAGER_FASTER if loaded is not None and eager_is_faster(self.entry) else loaded


class CompiledNetwork:
    """Runs a network through cached compiled packages, one per input shape, falling back
    to the eager network (with one warning) where compiling is impossible here. With
    `background`, a shape without a package runs eagerly while a builder makes it."""

    def __init__(self, network: nn.Module, dtype: torch.dtype, folder: Path | None = None,
                 *, background: bool = False):
        self.network = network
        self.dtype = dtype
        self.folder = folder
        self.background = background
        self.size_multiple = int(getattr(network, "size_multiple", 1))
        self._packages: dict[tuple[int, ...], object] = {}
        self._eager = Autocast(network, dtype, "cpu")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if shape not in self._packages:
            self._packages[shape] = self._load(x)
        compiled = self._packages[shape]
        if isinstance(compiled, Pending):
            compiled = self._packages[shape] = compiled.ready(x.device) or compiled
        if compiled is None or compiled is EAGER_FASTER or isinstance(compiled, Pending):
            self._eager.device_type = x.device.type
            return self._eager(x)
        return compiled(x)

    @property
    def fell_back(self) -> bool:
        """True once any frame shape had to run eagerly (no package could be built)."""
        return any(package is None for package in self._packages.values())

    @property
    def building(self) -> bool:
        """True while a shape runs eagerly waiting for a background build."""
        return any(isinstance(package, Pending) for package in self._packages.values())

    def _load(self, x: torch.Tensor):
        try:
            # inference_mode off: export traces with autograd state it can record.
            with torch.inference_mode(False), torch.no_grad():
                loaded = load_or_build(self.network, x.clone(), self.dtype, self.folder,
                                       background=self.background)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: run eagerly
            warnings.warn(f"compiled network unavailable ({type(exc).__name__}: {exc}); "
                          "running it uncompiled", RuntimeWarning, stacklevel=3)
            return None
        if isinstance(loaded, Pending) and loaded.started:
            log.warning("compiling the style network for this machine in the background "
                        "(minutes, lowest priority); this run goes on uncompiled, later "
                        "runs start compiled (--compile off: never)")
        return loaded


def main(argv: list[str] | None = None) -> int:
    """The background builder: ``python -m vidstyle.engines.compiled JOB ENTRY``."""
    job, entry = (Path(arg) for arg in (argv or sys.argv[1:]))
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # into the job's log
    lowest_priority()
    run_job(job, entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
