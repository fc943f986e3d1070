"""Choosing where and in what precision the networks run, and what is usable here."""

from __future__ import annotations

import platform

import torch

from vidstyle.errors import SettingsError

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then the CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise SettingsError(
            f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingsError(f"device {name!r} asked for, but no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SettingsError(
                f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist"
            )
    elif device.type == "mps" and not _mps_available():
        raise SettingsError(f"device {name!r} asked for, but Apple MPS is not available")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise SettingsError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return device


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def cpu_has_fast_bf16() -> bool:
    """True where the CPU multiplies bf16 natively (AVX512-BF16 / AMX).

    On such CPUs bf16 convolutions measured about 2x fp32 for the style networks; on
    others oneDNN emulates bf16 and it is slower than fp32.
    """
    probe = getattr(torch.backends.mkldnn, "is_available", lambda: False)()
    if not probe:
        return False
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None:
        return bool(check())
    return False


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The compute dtype: `auto` is fp16 on CUDA/MPS, bf16 on CPUs with native bf16."""
    if name == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    try:
        dtype = _DTYPES[name]
    except KeyError:
        raise SettingsError(f"unknown precision {name!r}: use auto, fp32, fp16 or bf16") from None
    if device.type == "cpu" and dtype == torch.float16:
        raise SettingsError("precision fp16 is not supported on the CPU: use bf16 or fp32")
    return dtype


def resolve_batch(batch: int | None, device: torch.device) -> int:
    """Frames per network call: `batch` if given, else 1 on a CPU and 4 elsewhere.

    A GPU needs several frames per call to fill up. A CPU does not, and pays for them: the
    activations of four frames outgrow its caches, and Johnson's network at 852x480 in bf16
    ran 3.95 fps one frame at a time against 2.27 fps four at a time (docs/benchmarks.md).
    """
    if batch is not None:
        return batch
    return 1 if device.type == "cpu" else 4


def precision_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in _DTYPES.items()}[dtype]


def usable_devices() -> list[dict]:
    """The devices a job could run on here, each with its automatic precision."""
    cpu = torch.device("cpu")
    devices = [{"device": "cpu", "name": platform.processor() or platform.machine(),
                "precision_auto": precision_name(resolve_precision("auto", cpu)),
                "bf16_native": cpu_has_fast_bf16()}]
    if torch.cuda.is_available():  # a CUDA build without a GPU or driver lists none
        for index in range(torch.cuda.device_count()):
            devices.append({"device": f"cuda:{index}", "name": torch.cuda.get_device_name(index),
                            "precision_auto": "fp16",
                            "bf16_native": torch.cuda.is_bf16_supported()})
    if _mps_available():
        devices.append({"device": "mps", "name": "Apple GPU", "precision_auto": "fp16"})
    return devices


def gather_info() -> dict:
    """What `vidstyle info` reports: versions, and what is usable on this machine."""
    import cv2

    from vidstyle.media.encoders import (
        ffmpeg_release,
        library_versions,
        pyav_version,
        usable_encoders,
    )
    from vidstyle.version import __version__

    return {
        "vidstyle": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        # The CUDA version only where CUDA runs: a CUDA build on a machine without a GPU
        # says nothing about what the machine can do.
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "pyav": pyav_version(),
        "ffmpeg": ffmpeg_release(),
        "ffmpeg_libraries": library_versions(),
        "opencv": cv2.__version__,
        "devices": usable_devices(),
        "encoders": usable_encoders(),
    }

