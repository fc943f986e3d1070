"""What a compiled package depends on (`PackageKey`); the key's digest names its cache entry.

The network (class and layer shapes), a hash of its weights, the frame bucket, the batch,
the precision, the library versions and the processor.

Frames are padded (reflect) up to multiples of `BUCKET` pixels, so one package serves every
frame size that rounds to the same bucket; the padding is cropped off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

# Frame sides are padded up to a multiple of this: 640x360 runs as 640x368 (2% more pixels),
# 1920x1080 as 1920x1088 (0.7%), while every size in a 16-pixel range shares one package.
BUCKET = 16
# Bump when the way packages are built changes, so entries from an older recipe are rebuilt.
RECIPE = "aoti-v2"  # v2: an int8 candidate where torchao is installed


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
