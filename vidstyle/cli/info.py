"""`vidstyle info`: versions, devices, precisions and encoders on this machine."""

from __future__ import annotations

import json
import platform
from typing import Annotated

import typer

from vidstyle.cli.common import console


def gather_info() -> dict:
    import av
    import cv2
    import torch

    from vidstyle import __version__
    from vidstyle.device import cpu_has_fast_bf16, precision_name, resolve_precision

    devices = [{"device": "cpu", "name": platform.processor() or platform.machine(),
                "precision_auto": precision_name(resolve_precision("auto", torch.device("cpu"))),
                "bf16_native": cpu_has_fast_bf16()}]
    for index in range(torch.cuda.device_count()):
        devices.append({"device": f"cuda:{index}", "name": torch.cuda.get_device_name(index),
                        "precision_auto": "fp16",
                        "bf16_native": torch.cuda.is_bf16_supported()})
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        devices.append({"device": "mps", "name": "Apple GPU", "precision_auto": "fp16"})
    wanted = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1", "prores_ks",
              "h264_nvenc", "hevc_nvenc", "av1_nvenc", "h264_videotoolbox", "h264_qsv",
              "h264_vaapi")
    encoders = [name for name in wanted if name in av.codecs_available]
    return {
        "vidstyle": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "pyav": av.__version__,
        "ffmpeg": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
        "opencv": cv2.__version__,
        "devices": devices,
        "encoders": encoders,
    }


def info(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Versions, devices, precisions and available encoders."""
    data = gather_info()
    if as_json:
        console.print_json(json.dumps(data))
        return
    from rich.table import Table

    for key in ("vidstyle", "python", "torch", "cuda", "pyav", "ffmpeg", "opencv"):
        console.print(f"[bold]{key:9}[/] {data[key]}")
    table = Table("device", "name", "auto precision", "native bf16")
    for d in data["devices"]:
        table.add_row(d["device"], d["name"], d["precision_auto"], str(d.get("bf16_native", "")))
    console.print(table)
    console.print("[bold]encoders[/]  " + ", ".join(data["encoders"]))


def register(app: typer.Typer) -> None:
    app.command("info")(info)
