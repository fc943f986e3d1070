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
before it is kept (`MIN_PSNR_DB`), so a miscompiled graph never becomes an entry.

Shape buckets: frames are padded (reflect) up to multiples of `BUCKET` pixels, so one
package serves every frame size that rounds to the same bucket; the padding is cropped off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import stat
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from vidstyle.files import user_cache_dir

# Frame sides are padded up to a multiple of this: 640x360 runs as 640x368 (2% more pixels),
# 1920x1080 as 1920x1088 (0.7%), while every size in a 16-pixel range shares one package.
BUCKET = 16
# Bump when the way packages are built changes, so entries from an older recipe are rebuilt.
RECIPE = "aoti-v1"
PACKAGE_NAME = "network.pt2"
MANIFEST_NAME = "manifest.json"
# A freshly built package must reproduce the float32 eager output at least this well (PSNR,
# dB, [0, 1] pixels): the bar issue 16 sets for any other backend. A max-abs bar does not
# work for bf16: eager and compiled bf16 each round differently, and single pixels of the
# 26-style network at 640x368 differed by 0.076 while the pictures were alike.
MIN_PSNR_DB = 35.0


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
    from torch._inductor import aoti_compile_and_package

    with torch.inference_mode():
        expected = Autocast(module.network, torch.float32, example.device.type)(example)
    exported = torch.export.export(module, (example,))
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=private_folder(entry.parent)))
    try:
        package = staging / PACKAGE_NAME
        aoti_compile_and_package(exported, package_path=str(package))
        with torch.inference_mode():
            got = load_package(package, example.device)(example)
        quality = psnr(got, expected)
        if not quality >= MIN_PSNR_DB:
            raise RuntimeError(f"compiled output is {quality:.1f} dB from float32 eager")
        package.chmod(0o600)
        manifest = {"key": asdict(key), "sha256": file_sha256(package), "psnr_db": quality}
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
        (staging / MANIFEST_NAME).chmod(0o600)
        staging.chmod(0o700)
        shutil.rmtree(entry, ignore_errors=True)
        try:
            os.replace(staging, entry)
        except OSError:
            if trusted_package(entry, key) is None:  # not another process's finished entry
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry / PACKAGE_NAME


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
                  folder: Path | None = None):
    """A callable running `network` (under autocast to `dtype`) compiled for `example`'s
    shape, from the cache when a trusted entry is there, else built now (and kept)."""
    folder = folder or compiled_cache_folder()
    key = package_key(network, tuple(example.shape), dtype, example.device)
    entry = folder / key.digest()
    package = trusted_package(entry, key)
    if package is not None:
        try:
            return load_package(package, example.device)
        except Exception:  # noqa: BLE001 - a package that cannot load is rebuilt
            pass
    module = Autocast(network, dtype, example.device.type).eval()
    package = build_package(module, example, entry, key)
    return load_package(package, example.device)


class CompiledNetwork:
    """Runs a network through cached compiled packages, one per input shape, falling back
    to the eager network (with one warning) where compiling is impossible here."""

    def __init__(self, network: nn.Module, dtype: torch.dtype, folder: Path | None = None):
        self.network = network
        self.dtype = dtype
        self.folder = folder
        self.size_multiple = int(getattr(network, "size_multiple", 1))
        self._packages: dict[tuple[int, ...], object] = {}
        self._eager = Autocast(network, dtype, "cpu")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape)
        if shape not in self._packages:
            self._packages[shape] = self._load(x)
        compiled = self._packages[shape]
        if compiled is None:
            self._eager.device_type = x.device.type
            return self._eager(x)
        return compiled(x)

    @property
    def fell_back(self) -> bool:
        """True once any frame shape had to run eagerly (no package could be built)."""
        return any(package is None for package in self._packages.values())

    def _load(self, x: torch.Tensor):
        try:
            # inference_mode off: export traces with autograd state it can record.
            with torch.inference_mode(False), torch.no_grad():
                return load_or_build(self.network, x.clone(), self.dtype, self.folder)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: run eagerly
            warnings.warn(f"compiled network unavailable ({type(exc).__name__}: {exc}); "
                          "running it uncompiled", RuntimeWarning, stacklevel=3)
            return None
