"""Reading model files safely: safetensors, or `.pth` state dicts that need no code.

Model files are data. safetensors cannot run code when loaded; a `.pth` is a pickle and
could, so it goes through one guarded loader (`read_pickled_tensors`:
``torch.load(weights_only=True)``, which refuses anything but tensors and plain
containers). Every failure becomes a one-line `WeightsError` naming the file and the
reason. The VGG-19 loss network is loaded here too (`load_vgg19`): networks never see
files.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from vidstyle.errors import WeightsError
from vidstyle.networks.johnson import JohnsonNet, clean_state_dict

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
SCALE_SUFFIX = "_scale"  # an int8 tensor "x" is stored with its per-channel scale "x_scale"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_safetensors(
    path: str | Path, sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (on the CPU) and the metadata of a safetensors file.

    With `sha256`, the file must match it first: a shipped file that changed is corrupt
    or replaced, and its numbers would give a wrong picture without any error.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(path, "file not found")
    if sha256 is not None and sha256_of(path) != sha256:
        raise WeightsError(path, "checksum mismatch: the file is corrupt or was replaced")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            metadata = dict(file.metadata() or {})
            # Copies, not views of the mapped file: a file replaced while in use (a user
            # style re-added, a cache entry rewritten) must not change loaded weights.
            tensors = {key: file.get_tensor(key).clone() for key in file.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(path, f"not a readable safetensors file ({_first_line(exc)})") from None
    return tensors, metadata


def write_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> None:
    """Write via a temporary file and a rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(partial), metadata=metadata)
        # safetensors creates its files owner-only (0600); a shared network should get the
        # same permissions as any other file the user creates.
        partial.chmod(0o666 & ~current_umask())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dequantize_int8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace every int8 tensor and its per-output-channel scale by float32 values."""
    for key in [k for k in state if k.endswith(SCALE_SUFFIX)]:
        name = key[: -len(SCALE_SUFFIX)]
        scale = state.pop(key).float()
        quantized = state[name].float()
        state[name] = quantized * scale.reshape(-1, *([1] * (quantized.dim() - 1)))
    return {key: value.float() for key, value in state.items()}


def load_into(module: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> nn.Module:
    """`load_state_dict(strict=True)` with a readable error when the file does not fit."""
    own = module.state_dict()
    missing = [key for key in own if key not in state and key not in _buffers(module)]
    unexpected = [key for key in state if key not in own]
    wrong = [key for key in state if key in own and state[key].shape != own[key].shape]
    if missing or unexpected or wrong:
        problems = []
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("wrong shape", wrong)):
            if keys:
                problems.append(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}")
        raise WeightsError(
            path, f"does not fit the {type(module).__name__} network ({'; '.join(problems)})"
        )
    module.load_state_dict({**{k: own[k] for k in _buffers(module)}, **state}, strict=True)
    return module.eval()


def _buffers(module: nn.Module) -> set[str]:
    return {name for name, _ in module.named_buffers()}


def read_johnson_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A Johnson network's state dict from `.pth`/`.pt` (pytorch/examples) or safetensors,
    cleaned and proven to fit `JohnsonNet`."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        state, _ = read_safetensors(path)
    else:
        state = _read_pickled_state(path)
    state = clean_state_dict(state)
    load_into(JohnsonNet(), state, path)
    return state


def _read_pickled_state(path: Path) -> dict[str, torch.Tensor]:
    loaded = read_pickled_tensors(path)
    for wrapper in ("state_dict", "model"):  # training checkpoints nest the weights
        if isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(path, "not a state dict (a mapping of names to tensors)")
    return dict(loaded)


def read_pickled_tensors(path: Path) -> dict:
    """The dict in a ``torch.save`` file, loaded without running code, or WeightsError."""
    if not path.is_file():
        raise WeightsError(path, "file not found")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            path, "refused: loading it would run code (it pickles objects other than "
            f"tensors; {_first_line(exc)[:120]}). Save a plain state_dict or use safetensors"
        ) from None
    except Exception as exc:  # torch raises many kinds for truncated or foreign files
        reason = f"not a readable PyTorch checkpoint ({_first_line(exc)})"
        raise WeightsError(path, reason) from None
    if not isinstance(loaded, dict):
        raise WeightsError(path, "not a state dict (a mapping of names to tensors)")
    return loaded


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
