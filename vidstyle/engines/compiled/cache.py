"""The package cache: where entries live, which ones are trusted, and loading one.

A package is code: loading it runs its shared library. So an entry is loaded only if its
manifest records this key, its sha256 matches the package's bytes (a truncated or corrupted
file), and it lives in the user's own cache folder, owned by this user and writable by no
one else. Entries are built in a private staging folder and moved into place in one rename.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from vidstyle.engines.compiled.key import PackageKey
from vidstyle.files import user_cache_dir

PACKAGE_NAME = "network.pt2"
MANIFEST_NAME = "manifest.json"


def compiled_cache_folder() -> Path:
    """Where compiled packages live: ``$VIDSTYLE_COMPILE_CACHE`` or the user cache."""
    override = os.environ.get("VIDSTYLE_COMPILE_CACHE")
    return Path(override) if override else user_cache_dir() / "compiled"


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


def private_folder(path: Path) -> Path:
    """Create `path` (and parents) readable and writable by this user only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        path.chmod(0o700)
    return path


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


@contextlib.contextmanager
def staging_folder(entry: Path):
    """A private folder beside `entry` to build in, removed afterwards (it is gone already
    where `install_entry` moved it into place)."""
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=private_folder(entry.parent)))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def install_entry(staging: Path, entry: Path, key: PackageKey, quality: float,
                  speedup: float, variant: str) -> None:
    """Write the manifest of the package in `staging` and move the folder to `entry` in
    one rename (replacing an older entry), private to this user."""
    package = staging / PACKAGE_NAME
    package.chmod(0o600)
    manifest = {"key": asdict(key), "sha256": file_sha256(package), "psnr_db": quality,
                "speedup": speedup, "variant": variant, "threads": torch.get_num_threads()}
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    (staging / MANIFEST_NAME).chmod(0o600)
    staging.chmod(0o700)
    shutil.rmtree(entry, ignore_errors=True)
    try:
        os.replace(staging, entry)
    except OSError:
        if trusted_package(entry, key) is None:  # not another process's finished entry
            raise


def recorded_speedup(entry: Path) -> float | None:
    """The speedup the entry's build measured (None: not recorded)."""
    try:
        value = json.loads((entry / MANIFEST_NAME).read_text()).get("speedup")
    except (OSError, ValueError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


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


def load_trusted(entry: Path, key: PackageKey, device: torch.device):
    package = trusted_package(entry, key)
    if package is None:
        return None
    try:
        return load_package(package, device)
    except Exception:  # noqa: BLE001 - a package that cannot load is rebuilt
        return None
