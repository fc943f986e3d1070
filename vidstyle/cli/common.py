"""What every command shares: the console, error reporting, settings from flags."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from vidstyle.config import Settings, load_config
from vidstyle.errors import VidstyleError

console = Console()
err_console = Console(stderr=True)


def debug_enabled() -> bool:
    return os.environ.get("VIDSTYLE_DEBUG", "") not in ("", "0")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a `VidstyleError` into one red line on stderr and a non-zero exit.

    Anything else is a bug: it propagates with its traceback.
    """
    try:
        yield
    except VidstyleError as exc:
        if debug_enabled():
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: no partial output was left behind")
        raise typer.Exit(130) from None


def build_settings(config: Path | None, **flags: Any) -> Settings:
    """Defaults, then the `--config` TOML, then the flags the user actually gave.

    Flags left at None mean "not given" and do not override the config file. Dotted
    keys (``gatys.iterations``) reach nested sections.
    """
    settings = load_config(config) if config else Settings()
    nested: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None:
            continue
        section, _, name = key.rpartition(".")
        (nested.setdefault(section, {}) if section else nested)[name or key] = value
    return settings.replace(**nested).validate()


def is_terminal() -> bool:
    return sys.stdout.isatty() and console.is_terminal
