"""One optimisation step from weighted loss terms, shared by the fit and `stabilize`."""

from __future__ import annotations

import math

import torch

from vidstyle.errors import SettingsError


def autocast_for(device: torch.device, dtype: torch.dtype):
    """Autocast to `dtype` on `device`, or off for float32."""
    if dtype == torch.float32:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


def take_step(optimizer: torch.optim.Optimizer, terms: dict[str, torch.Tensor], step: int,
              what: str) -> dict[str, float]:
    """Backpropagate the sum of `terms` and step `optimizer`; returns each term and the
    total as floats. A non-finite total is a SettingsError naming `what` diverged."""
    total = sum(terms.values())
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    values = {k: float(v.detach()) for k, v in terms.items()} | {"total": float(total.detach())}
    if not math.isfinite(values["total"]):
        raise SettingsError(f"{what} diverged at step {step}; lower the learning rate")
    return values
