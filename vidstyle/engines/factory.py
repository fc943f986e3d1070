"""The engine a job's settings name, built with its network, precision and temporal filter."""

from __future__ import annotations

import torch
from torch import nn

from vidstyle.config import Settings
from vidstyle.device import resolve_precision
from vidstyle.engines.base import Engine
from vidstyle.engines.fast import FastEngine
from vidstyle.engines.gatys import GatysEngine
from vidstyle.engines.scheduled import build_scheduled_engine
from vidstyle.errors import SettingsError
from vidstyle.styles import load_style
from vidstyle.styles.spec import is_schedule
from vidstyle.temporal import blend


def engine_precision(settings: Settings, device: torch.device) -> torch.dtype:
    """The compute dtype of the job's engine. The gatys engine keeps VGG-19 in fp32 on a
    CPU (bf16 there slowed L-BFGS, engines/gatys.py), so "auto" means fp32 for it and an
    explicit bf16 is refused rather than silently ignored."""
    dtype = resolve_precision(settings.precision, device)
    if settings.engine != "gatys" or device.type != "cpu" or dtype == torch.float32:
        return dtype
    if settings.precision != "auto":
        raise SettingsError(
            f"precision {settings.precision} does nothing for --engine gatys on the CPU "
            "(it optimises in fp32 there); use auto or fp32"
        )
    return torch.float32


def build_engine(
    settings: Settings, device: torch.device, dtype: torch.dtype, network: nn.Module | None = None
) -> Engine:
    """The engine `settings.engine` names, with its network and temporal filter;
    `network` replaces the style network that `settings.style` names."""
    if is_schedule(settings.style):  # styles along the timeline (docs/schedule.md)
        return build_scheduled_engine(settings, device, dtype, make_temporal_filter(settings))
    if settings.engine == "fast":
        network = network or load_network(settings, device)
        return FastEngine(
            network, device, dtype,
            max_size=settings.max_size,
            temporal_filter=make_temporal_filter(settings),
            compile=settings.compile,
            style_scale=settings.style_scale,
        )
    init_network = None
    if settings.engine == "fast+gatys":
        init_network = network or load_network(settings, device)
    return GatysEngine.from_settings(settings, device, dtype, init_network=init_network)


def load_network(settings: Settings, device: torch.device) -> nn.Module:
    """The style network `settings.style` names, at its strength and colour setting."""
    return load_style(
        settings.style,
        strength=settings.strength,
        preserve_color=settings.preserve_color,
        device=device,
    )


def make_temporal_filter(settings: Settings):
    """The flicker filter `settings.temporal_mode` names, or None when it is off."""
    if settings.temporal_mode == "off":
        return None
    return blend.make_temporal_filter(settings.temporal_mode, settings.temporal_strength,
                                      settings.temporal_structure)
