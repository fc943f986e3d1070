"""The exceptions a user can see.

Every error that reaches the CLI is a `VidstyleError`: its message is one line that names
the file (or setting) and the reason. The CLI prints that line and exits non-zero; a
traceback means a bug and is shown only with `--debug`.
"""

from __future__ import annotations

from pathlib import Path


class VidstyleError(Exception):
    """Base class: a problem with the user's input, settings or environment."""

    exit_code = 1


class InputError(VidstyleError):
    """An input file is missing, unreadable, corrupt or not a video."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class OutputError(VidstyleError):
    """An output cannot be written (exists, unwritable folder, full disk)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class StyleError(VidstyleError):
    """An unknown style name, an unreadable style image, a bad blend."""


class WeightsError(VidstyleError):
    """A model file is missing, corrupt, unsafe (needs code to load) or mismatched."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SettingsError(VidstyleError):
    """A bad option value or configuration file (unknown device, bad precision...)."""

    exit_code = 2


class Cancelled(VidstyleError):
    """The job was cancelled (Ctrl-C, SIGTERM, or a cancel event); nothing was written."""

    exit_code = 130


class MissingExtraError(VidstyleError):
    """An optional feature was asked for but its extra is not installed."""

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(f"{feature} needs the optional extra: pip install 'vidstyle[{extra}]'")
