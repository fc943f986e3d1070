"""What every command shares: the consoles, error reporting, and the options declared once.

Settings options come from `vidstyle.config.KNOBS` (the table `Settings.validate` checks
against), through `settings_options`; the other shared options are the `Annotated`
aliases below. A command names them; it does not redeclare them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console

from vidstyle.config import Knob, build_settings
from vidstyle.errors import VidstyleError
from vidstyle.executors import EXECUTORS

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", metavar="FILE", show_default="none",
    help="Settings preset (TOML), e.g. configs/quality.toml; flags override it.",
)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]
Executor = Annotated[str, typer.Option(
    metavar="TEXT", rich_help_panel="Where it runs",
    help=f"Where jobs run; ray needs pip install 'vidstyle\\[ray]'. One of: "
         f"{', '.join(EXECUTORS)}.",
)]
RayAddress = Annotated[str | None, typer.Option(
    "--ray-address", metavar="TEXT", rich_help_panel="Where it runs",
    show_default="this machine's cluster, else a new local one",
    help="Ray cluster: auto or HOST:PORT.",
)]
Segments = Annotated[int | None, typer.Option(
    metavar="INTEGER", min=1, rich_help_panel="Where it runs", show_default="whole files",
    help="Cut each video at keyframes into N segments stylized in parallel (ray).",
)]
SegmentSeconds = Annotated[float | None, typer.Option(
    metavar="NUMBER", rich_help_panel="Where it runs", show_default="whole files",
    help="Like --segments, by segment length in seconds (ray).",
)]


class Command(typer.core.TyperCommand):
    """A command whose help names values by their metavars (VIDEO..., FILE, INTEGER)
    rather than Typer's Python type labels (``<path>``, ``<bool>``, ``{inputs}...``)."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument):
                name = param.metavar or param.name.upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def get_params(self, ctx: typer.Context) -> list:
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, typer.core.TyperArgument) or getattr(param, "is_flag", False):
                label = None  # an argument shows its metavar; a flag takes no value
            elif param.metavar is not None:
                continue
            else:
                label = TYPE_LABELS.get(param.bare_type(), param.bare_type().upper())
            param.display_type_rich = functools.partial(_type_label, label)
        return params


# What --help shows after an option for the kind of value it takes.
TYPE_LABELS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "Path": "PATH"}


def _type_label(label: str | None, ctx: typer.Context) -> str | None:
    return label


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
        err_console.print("[yellow]interrupted[/]: nothing partial was published (a resumable "
                          "job keeps its finished segments: run it again to resume)")
        raise typer.Exit(130) from None


def knob_option(knob: Knob) -> Any:
    """The command-line option for one knob, as an annotation for a parameter whose
    default is `knob.default()`."""
    kind = knob.value_type()
    option = typer.Option(
        *knob.option_names, help=knob.describe(), rich_help_panel=knob.panel,
        show_default=True if knob.default_text is None else knob.default_text,
    )
    return Annotated[kind | None, option]


def knob_parameter(knob: Knob) -> inspect.Parameter:
    return inspect.Parameter(_parameter_name(knob), inspect.Parameter.KEYWORD_ONLY,
                             default=knob.default(), annotation=knob_option(knob))


CONTEXT = "knob__context"


def _parameter_name(knob: Knob) -> str:
    return "knob__" + knob.key.replace(".", "__")


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user typed option `name` (a value from its default does not count)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def settings_options(knobs: Sequence[Knob]) -> Callable[[Callable], Callable]:
    """Give a command `--config` and one option per knob; call it with `settings=`.

    The command declares a `settings` parameter and its own options; the knobs' options
    are added to the signature Typer reads, so every command that stylizes lists the
    same flag with the same help, default and accepted values.
    """

    def decorate(command: Callable) -> Callable:
        own = inspect.signature(command, eval_str=True)
        kept = [p for p in own.parameters.values() if p.name != "settings"]
        context = inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY,
                                    annotation=typer.Context)
        config = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                                   annotation=ConfigOption)
        parameters = [*kept, config, *(knob_parameter(k) for k in knobs), context]

        @functools.wraps(command)
        def run(**values: Any) -> Any:
            # Only the flags typed override --config; the rest keep the file's values.
            ctx = values.pop(CONTEXT)
            flags = {}
            for knob in knobs:
                value = values.pop(_parameter_name(knob))
                if given(ctx, _parameter_name(knob)):
                    flags[knob.key] = value
            config_path = values.pop("config")
            with user_errors():
                settings = build_settings(config_path, **flags)
            return command(settings=settings, **values)

        run.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return decorate
