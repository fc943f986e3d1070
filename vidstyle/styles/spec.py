"""What a --style value says, read without touching any file's contents: pure parsing.

    scream                      one style
    scream:0.6,wave:0.4         a blend (weights normalised later, by the resolver)
    preset:3@multistyle26       a preset of a named 26-style network
    0:scream,10:wave            a schedule of time:style cues (or a .toml file of them)

`resolve` turns parsed names into networks and `schedule` parses cue times; both read
their specs here, so neither needs the other to name an output file (`style_slug`).
"""

from __future__ import annotations

import re
from pathlib import Path

from vidstyle.errors import StyleError

PRESET_PREFIX = "preset:"
SCHEDULE_SUFFIX = ".toml"
# A cue: a time (s, m:ss, h:mm:ss, with optional fraction), a colon, a style spec.
CUE = re.compile(r"^\s*(\d+(?::\d{1,2}){0,2}(?:\.\d*)?)\s*:\s*(\S.*?)\s*$")


def parse_spec(spec: str) -> list[tuple[str, float]]:
    """``"scream:0.6,wave:0.4"`` -> ``[("scream", 0.6), ("wave", 0.4)]``; a lone existing
    file is never split (its name may hold commas or colons)."""
    spec = spec.strip()
    if not spec:
        raise StyleError("empty style: give a name (vidstyle styles list), preset:N or a file")
    if Path(spec).is_file():
        return [(spec, 1.0)]
    parts = []
    for part in spec.split(","):
        part = part.strip()
        name, weight = _split_weight(part)
        if not name:
            raise StyleError(f"{spec!r}: empty part in the blend")
        parts.append((name, weight))
    weights = [w for _, w in parts]
    if min(weights) < 0 or sum(weights) <= 0:
        raise StyleError(f"{spec!r}: blend weights must be non-negative and not all zero")
    return parts


def _split_weight(part: str) -> tuple[str, float]:
    head, sep, tail = part.rpartition(":")
    if not sep or head.lower() + ":" == PRESET_PREFIX or Path(part).is_file():
        return part, 1.0
    try:
        return head.strip(), float(tail)
    except ValueError:
        return part, 1.0  # e.g. a Windows path C:\...; resolved (or refused) as a name



def is_schedule(spec: str) -> bool:
    """Whether a --style value is a schedule (time:style cues, or a .toml file)."""
    spec = spec.strip()
    if spec.lower().endswith(SCHEDULE_SUFFIX):
        return True
    # The first cue decides; a malformed later one is then a schedule error, not a style.
    return bool(CUE.match(spec.split(",")[0]))


def schedule_slug(spec: str) -> str:
    """A filename part for a schedule: its styles in order (or the file's stem)."""
    if spec.strip().lower().endswith(SCHEDULE_SUFFIX):
        return Path(spec.strip()).stem
    styles = [m.group(2) for m in map(CUE.match, spec.split(",")) if m is not None]
    return "-".join(dict.fromkeys(style_slug(s) for s in styles))[:96]



def style_slug(spec: str) -> str:
    """A short, filename-safe name for a spec: ``scream``, ``scream0.6-wave0.4``,
    ``preset3``, a painting's file stem; a schedule's styles in order
    (``scream-wave-udnie``). Parses only; never reads files or weights."""
    if is_schedule(spec):
        return schedule_slug(spec)
    try:
        parts = parse_spec(spec)
    except StyleError:
        parts = [(spec, 1.0)]
    slugs = [_name_slug(name) for name, _ in parts]
    if len(parts) == 1:
        return slugs[0]
    return "-".join(f"{slug}{weight:g}" for slug, (_, weight) in zip(slugs, parts, strict=True))


def _name_slug(name: str) -> str:
    if name.lower().startswith(PRESET_PREFIX):
        index, _, file = name[len(PRESET_PREFIX):].partition("@")
        tail = "_" + _name_slug(file) if file else ""
        return "preset" + re.sub(r"[^0-9]", "", index) + tail
    stem = Path(name).stem if (Path(name).suffix or "/" in name) else name
    return re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_")[:48] or "style"
