"""Checkpoints (resumable state beside the output) and the deliverable network file.

``OUTPUT.train/`` holds ``network.safetensors`` (fp32), ``optimizer.pt`` (read back with
``torch.load(weights_only=True)``), ``state.json`` (step, data position, settings, recent
losses) and ``preview_STEP.jpg``. Each file is written under a temporary name and renamed,
so a run killed mid-write leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from vidstyle.errors import InputError, OutputError
from vidstyle.networks.johnson import JohnsonNet
from vidstyle.styles.weights import read_safetensors, write_safetensors
from vidstyle.train.settings import TrainSettings

CHECKPOINT_SUFFIX = ".train"
FORMAT_NAME = "vidstyle-johnson"
# Loss history kept in state.json (and TrainResult): enough to plot, small enough to read.
HISTORY_LENGTH = 2000


def checkpoint_dir_for(output: Path) -> Path:
    return output.with_name(output.name + CHECKPOINT_SUFFIX)


def save_checkpoint(folder: Path, network: JohnsonNet, optimizer: torch.optim.Optimizer,
                    step: int, settings: TrainSettings, style_image: Path,
                    history: list[dict[str, float]], data_position: list | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu() for k, v in network.state_dict().items()}
    write_safetensors(folder / "network.safetensors", state, {"step": str(step)})
    partial = folder / "optimizer.pt.tmp"
    torch.save(optimizer.state_dict(), partial)
    partial.replace(folder / "optimizer.pt")
    info = {"step": step, "style_image": str(style_image), "settings": settings.to_json(),
            "data_position": data_position, "losses": history[-HISTORY_LENGTH:]}
    partial = folder / "state.json.tmp"
    partial.write_text(json.dumps(info, indent=1))
    partial.replace(folder / "state.json")


def load_checkpoint(folder: Path, network: JohnsonNet,
                    optimizer: torch.optim.Optimizer,
                    ) -> tuple[int, list[dict[str, float]], list | None]:
    """Restore network and optimizer; returns (step reached, loss history, data position
    or None for a checkpoint written before positions were kept)."""
    try:
        info = json.loads((folder / "state.json").read_text())
        tensors, _ = read_safetensors(folder / "network.safetensors")
        network.load_state_dict(tensors)
        optimizer.load_state_dict(
            torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True)
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(folder, f"cannot resume from this checkpoint ({exc})") from None
    return int(info["step"]), list(info.get("losses", [])), info.get("data_position")


def write_network(output: Path, network: JohnsonNet, settings: TrainSettings,
                  style_image: Path, step: int) -> None:
    """The deliverable: `JohnsonNet` state-dict keys, metadata describing the training."""
    dtype = torch.float16 if settings.save_fp16 else torch.float32
    state = {k: v.detach().to(dtype).cpu() for k, v in network.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "family": "johnson",
        "style": settings.style_name or output.stem.removeprefix("johnson_"),
        "style_image": style_image.name,
        "steps": str(step),
        "size": str(settings.size),
        "batch": str(settings.batch),
        "style_size": str(settings.style_size),
        "weights": json.dumps({"content": settings.content_weight,
                               "style": settings.style_weight, "tv": settings.tv_weight,
                               "temporal": settings.temporal_weight}),
    }
    # Where the weights started and what else pulled on them: a file's history, kept in it.
    if settings.init:
        metadata["init"] = Path(settings.init).name
    if settings.teacher:
        metadata["teacher"] = f"{settings.teacher} (weight {settings.teacher_weight:g})"
    try:
        write_safetensors(output, state, metadata)
    except OSError as exc:
        raise OutputError(output, f"cannot write the network ({exc.strerror or exc})") from None


def write_preview(path: Path, network: JohnsonNet, preview: torch.Tensor) -> None:
    with torch.no_grad():
        styled = network(preview.to(next(network.parameters()).device)).float().cpu()
    row = torch.cat([preview, styled], dim=3)[0].permute(1, 2, 0).numpy()
    pixels = (row * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])

