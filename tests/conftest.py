"""Shared fixtures: the stand-in network, the real sample clips, a terminal replayer.
The helper functions they build on are in helpers.py."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import pytest
from helpers import SAMPLES, InvertNetwork

# The default `compile = "auto"` starts a background compiler process on a cache miss:
# minutes of C++ builds per network and size, for every test (and every CLI subprocess,
# which inherits this) that runs the fast engine. The tests of that path ask for it.
os.environ.setdefault("VIDSTYLE_COMPILE", "off")


@pytest.fixture(scope="module")
def default_compile(tmp_path_factory) -> list[tuple[int, ...]]:
    """`compile = "auto"` (the default) as a user's first run meets it: an empty package
    cache (a folder of this module's, never the user's), each batch shape looked up there,
    missed, and handed to the background builder, the run going on uncompiled. Only the
    detached builder process is not started: minutes of C++ per shape, outliving the test
    (tests/test_engines_compiled.py runs it). Gives the shapes the runs asked to build."""
    from vidstyle.engines.compiled import CompiledNetwork

    # The module whose `load_or_build` hands a missing entry to the builder.
    runtime = importlib.import_module(CompiledNetwork.__module__)
    asked: list[tuple[int, ...]] = []

    def builder_not_started(module, example, entry, key) -> bool:
        asked.append(tuple(example.shape))
        return False  # what a run sees when another builder has the entry

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIDSTYLE_COMPILE_CACHE", str(tmp_path_factory.mktemp("compile-cache")))
        patch.setattr(runtime, "start_background_build", builder_not_started)
        yield asked


@pytest.fixture
def invert() -> InvertNetwork:
    return InvertNetwork()


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


def _final_screen(output: str) -> list[str]:
    """The lines a terminal shows after printing `output`: the cursor moves and erasures
    rich's live display uses (CR, LF, cursor up, erase line) are applied, colours dropped."""
    lines, row, column = [""], 0, 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]+", output):
        if token == "\n":
            row, column = row + 1, 0
            lines.extend([""] * (row + 1 - len(lines)))
        elif token == "\r":
            column = 0
        elif token.startswith("\x1b["):
            code, count = token[-1], token[2:-1]
            if code == "A":
                row = max(0, row - int(count or 1))
            elif code == "K":
                lines[row] = "" if count == "2" else lines[row][:column]
        else:
            line = lines[row].ljust(column)
            lines[row] = line[:column] + token + line[column + len(token):]
            column += len(token)
    return [line.rstrip() for line in lines if line.strip()]


@pytest.fixture
def final_screen():
    """`final_screen(text)`: what is left on a terminal after `text` was written to it."""
    return _final_screen
