"""`vidstyle info`: versions, and the devices, precisions and encoders usable here."""

from __future__ import annotations

import json

import typer

from vidstyle.cli.common import AsJson, Command, console


def info(as_json: AsJson = False) -> None:
    """Versions, and the devices, precisions and video encoders usable on this machine."""
    from rich.table import Table

    from vidstyle.device import gather_info

    data = gather_info()
    if as_json:
        console.print_json(json.dumps(data))
        return
    libraries = ", ".join(f"{name} {version}"
                          for name, version in data["ffmpeg_libraries"].items())
    lines = [
        ("vidstyle", data["vidstyle"]),
        ("python", data["python"]),
        ("torch", data["torch"]),
        ("cuda", data["cuda"] or "not usable here (no CUDA GPU or driver)"),
        ("pyav", data["pyav"]),
        ("ffmpeg", f"{data['ffmpeg']} ({libraries})"),
        ("opencv", data["opencv"]),
    ]
    for key, value in lines:
        console.print(f"[bold]{key:9}[/] {value}", highlight=False, soft_wrap=True)
    table = Table("device", "name", "auto precision", "native bf16", title="usable devices")
    for d in data["devices"]:
        table.add_row(d["device"], d["name"], d["precision_auto"], str(d.get("bf16_native", "")))
    console.print(table)
    console.print("[bold]encoders[/]  " + ", ".join(data["encoders"]), highlight=False,
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("info", cls=Command)(info)
