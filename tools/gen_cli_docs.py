"""Write docs/cli.md, the command-line reference, from the Typer app and the settings table.

    python tools/gen_cli_docs.py           # rewrite docs/cli.md
    python tools/gen_cli_docs.py --check   # exit 1 if docs/cli.md is not what this writes

Every option of every command comes from the app itself (the same records `--help`
prints), and the settings-file section from `vidstyle.config.KNOBS`, so the page cannot
say anything the program does not. tests/test_docs.py runs `--check`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The defaults a user gets: $VIDSTYLE_COMPILE changes `compile`'s default (the tests set
# it to "off"), and the options read their defaults when the CLI is imported below.
os.environ.pop("VIDSTYLE_COMPILE", None)

from typer.main import get_command  # noqa: E402

from vidstyle.cli import app  # noqa: E402
from vidstyle.config import KNOBS, Knob  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "cli.md"
COMMAND = "python tools/gen_cli_docs.py"
# Options without a panel of their own are listed first, under this heading.
MAIN_PANEL = "Options"
# The docs page that explains each command (commands not listed here have none).
GUIDES = {
    "apply": "output.md",
    "image": "styles.md",
    "preview": "styles.md",
    "info": "performance.md",
    "train": "training.md",
    "stabilize": "flicker.md",
    "eval": "flicker.md",
    "watch": "watch.md",
    "status": "watch.md",
    "styles": "styles.md",
}


def cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def split_default(help_text: str) -> tuple[str, str]:
    """Click's help record ends with "[default: X; x>=1]" or "[required]": split it off."""
    text = help_text.rstrip()
    if not text.endswith("]") or "  [" not in text:
        return text, ""
    body, _, extra = text.rpartition("  [")
    extra = extra[:-1]
    defaults = [part.strip() for part in extra.split(";")]
    kept = []
    for part in defaults:
        if part.startswith("default: "):
            value = part.removeprefix("default: ")
            if value.startswith("(") and value.endswith(")"):
                value = value[1:-1]
            kept.append(value)
        elif part == "required":
            kept.append("required")
    return body.strip(), "; ".join(kept)


def commands(command, ctx) -> list[tuple[object, object]]:
    """(command, context) for every command below the root, depth first, in list order."""
    found = []
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        sub_ctx = sub.context_class(sub, parent=ctx, info_name=name)
        found.append((sub, sub_ctx))
        if hasattr(sub, "list_commands"):
            found.extend(commands(sub, sub_ctx))
    return found


def option_rows(command, ctx) -> dict[str, list[str]]:
    """Markdown table rows per help panel, in the order `--help` lists them."""
    panels: dict[str, list[str]] = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or record[0] == "--help":
            continue
        names, help_text = record
        text, default = split_default(help_text)
        panel = getattr(param, "rich_help_panel", None) or MAIN_PANEL
        panels.setdefault(panel, []).append(
            f"| `{cell(names)}` | {cell(default) or '-'} | {cell(text)} |"
        )
    return panels


def command_section(command, ctx) -> list[str]:
    path = ctx.command_path
    lines = [f"## {path}", ""]
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    lines += ["```", usage, "```", ""]
    lines += [" ".join(paragraph.split()) + "\n" for paragraph in
              (command.help or "").strip().split("\n\n")]
    top = path.split()[1]
    if top in GUIDES and path.count(" ") == 1:
        lines += [f"Guide: [{GUIDES[top]}]({GUIDES[top]}).", ""]
    if hasattr(command, "list_commands"):
        return lines
    for panel, rows in option_rows(command, ctx).items():
        lines += [f"**{panel}**", "", "| option | default | what it does |", "|---|---|---|",
                  *rows, ""]
    return lines


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def knob_row(knob: Knob) -> str:
    default = knob.default()
    default = knob.default_text if default is None or knob.default_text else toml_value(default)
    return (f"| `{knob.key}` | `{cell(knob.option_names[0])}` | {cell(default)} | "
            f"{cell(knob.describe())} |")


def render() -> str:
    root = get_command(app)
    ctx = root.context_class(root, info_name="vidstyle")
    found = commands(root, ctx)
    lines = [
        "# Command-line reference",
        "",
        f"Generated by `{COMMAND}` from the command-line app and the settings table",
        "(`KNOBS` in `vidstyle/config.py`); do not edit by hand. Every command prints the",
        "same with `--help`.",
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    for command, sub_ctx in found:
        anchor = sub_ctx.command_path.replace(" ", "-")
        lines.append(f"| [`{sub_ctx.command_path}`](#{anchor}) | "
                     f"{cell(first_paragraph(command.help))} |")
    lines.append("")
    for command, sub_ctx in found:
        lines += command_section(command, sub_ctx)
    lines += [
        "## Settings files",
        "",
        "`--config FILE` reads a TOML preset (`configs/*.toml`); flags given on the command",
        "line override it. A key with a dot is a table: `output.crf = 20` is `[output]`",
        "`crf = 20`. The same settings are the fields of `vidstyle.Settings` in Python.",
        "",
        "| key | flag | default | what it does |",
        "|---|---|---|---|",
        *(knob_row(knob) for knob in KNOBS),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/cli.md is not current; write nothing")
    parser.add_argument("--stdout", action="store_true", help="print the page instead")
    args = parser.parse_args(argv)
    page = render()
    if args.stdout:
        sys.stdout.write(page)
        return 0
    if args.check:
        current = PAGE.read_text() if PAGE.exists() else ""
        if current != page:
            print(f"docs/cli.md is not current: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
