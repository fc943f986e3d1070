"""A network run through its compiled packages, one per frame shape; eagerly until one is there.

`CompiledNetwork` is what the fast engine calls. Under `compile = "auto"` a shape without a
package runs eagerly while the background builder makes it, and switches to the package
when it appears; a package this machine measured slower than eager is not used. A shape
whose package cannot be built or loaded runs eagerly, with one warning.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from vidstyle.engines.compiled.build import Autocast, build_package
from vidstyle.engines.compiled.builder import start_background_build
from vidstyle.engines.compiled.cache import (
    compiled_cache_folder,
    load_package,
    load_trusted,
    recorded_speedup,
)
from vidstyle.engines.compiled.key import PackageKey, package_key

log = logging.getLogger(__name__)

# How often a run that started a background build looks for the finished package.
POLL_SECONDS = 5.0
# `compile = "auto"` uses a package only where the build measured it at least this much
# faster than eager on this machine. Compiling does not always win: Johnson's network in
# bf16 on one thread of this project's 2-core machine ran compiled at 0.89x eager (640x360)
# and 0.88x (1080p), while the 26-style network gained 1.26-1.74x (docs/benchmarks.md).
MIN_SPEEDUP = 1.03


def eager_is_faster(entry: Path) -> bool:
    speedup = recorded_speedup(entry)
    return speedup is not None and speedup < MIN_SPEEDUP


# What a shape runs under "auto" where this machine measured its package slower than eager.
EAGER_FASTER = "eager is faster here"


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
