"""The `vidstyle` command: a Typer app assembled from one module per command.

Commands parse flags, call the Python API, and print. No logic of their own.
"""

from __future__ import annotations

import logging
import signal
import warnings

import typer

from vidstyle.cli import apply, image, info, styles, train, watch
from vidstyle.cli import eval as evaluate

app = typer.Typer(
    name="vidstyle",
    help="Stylize videos with neural style transfer, keeping the audio and the timing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for command_module in (apply, image, info, styles, train, evaluate, watch):
    command_module.register(app)


def _terminate_like_interrupt(signum, frame) -> None:
    # SIGTERM (kill, systemd, docker stop) would end the process on the spot and leave
    # the temporary output behind; as KeyboardInterrupt it unwinds and cleans up.
    raise KeyboardInterrupt


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    # A warning is for the user, not a developer: no source path, no code line; worded
    # like the commands' own "warning:" lines.
    return f"warning: {message}\n"


class _LowerCaseLevel(logging.Formatter):
    """"warning: ...", as the commands print their own warnings."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_LowerCaseLevel("%(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    warnings.formatwarning = _one_line_warning
    signal.signal(signal.SIGTERM, _terminate_like_interrupt)
    app()
