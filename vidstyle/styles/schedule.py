"""Style schedules: which style (or crossfade of two) each moment of a video gets.

    0:scream, 12.5:wave, 40:udnie          in a --style value: time:style, comma-separated
    0:scream, 0:01:30.250:wave             times in seconds, m:ss, or h:mm:ss(.ms)
    edit.toml                              a schedule file, for longer edits:

        transition = 2.0                   # optional; else --transition
        [[cue]]
        at = 0                             # seconds, or "0:01:30.250"
        style = "scream"                   # any style spec without a comma
        [[cue]]
        at = "12.5"
        style = "wave"

Each cue's style starts at its time; `transition` seconds around it (centred, shortened
where two cues are closer) the previous style crossfades into it along a smoothstep, so
the change has no kink at either end. Parsing and checking happen before any work; every
mistake is one line (`StyleError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from vidstyle.config import read_toml
from vidstyle.errors import StyleError
from vidstyle.styles.resolve import resolve_component
from vidstyle.styles.spec import CUE, SCHEDULE_SUFFIX, parse_spec


@dataclass(frozen=True)
class Cue:
    time: float  # seconds on the input's clock
    style: str


@dataclass(frozen=True)
class Schedule:
    """Cues in time order, and the crossfade length (seconds) at each change."""

    cues: tuple[Cue, ...]
    transition: float

    @property
    def styles(self) -> list[str]:
        """Each distinct style once, in order of first use."""
        return list(dict.fromkeys(c.style for c in self.cues))

    def changes(self) -> list[tuple[float, float, Cue, Cue]]:
        """(start, end, from, to) of every transition: centred on the cue's time, at most
        half the gap to each neighbour, never before the first cue."""
        spans = []
        for i in range(1, len(self.cues)):
            before, cue = self.cues[i - 1], self.cues[i]
            half = self.transition / 2
            half = min(half, (cue.time - before.time) / 2)
            if i + 1 < len(self.cues):
                half = min(half, (self.cues[i + 1].time - cue.time) / 2)
            spans.append((cue.time - half, cue.time + half, before, cue))
        return spans

    def mix_at(self, time: float) -> tuple[str, str, float]:
        """(from style, to style, weight of `to` in [0, 1]) at `time`; weight 0 or 1 when
        no transition is under way (then both names are the current style)."""
        for start, end, before, cue in self.changes():
            if start <= time < end:
                return before.style, cue.style, smoothstep((time - start) / (end - start))
        current = self.cues[0]
        for cue in self.cues:
            if cue.time <= time:
                current = cue
        return current.style, current.style, 1.0

    def check_within(self, duration: float | None, where: str | Path) -> None:
        """Refuse cues at or after the end of a `duration`-second input."""
        if duration is None:
            return
        late = [c for c in self.cues if c.time >= duration]
        if late:
            raise StyleError(
                f"{where}: style schedule cue {format_time(late[0].time)} "
                f"({late[0].style}) is past the end of the video ({format_time(duration)})"
            )


def smoothstep(x: float) -> float:
    """3x^2 - 2x^3: 0 to 1, monotonic, flat at both ends (no jolt where a fade starts)."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def parse_time(text: str) -> float:
    """``12.5`` / ``1:30`` / ``0:01:30.250`` -> seconds; StyleError if malformed."""
    text = str(text).strip()
    parts = text.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise StyleError(f"style schedule: {text!r} is not a time "
                         "(seconds, m:ss or h:mm:ss.ms)") from None
    if len(parts) > 3 or any(n < 0 for n in numbers) or any(n >= 60 for n in numbers[1:]):
        raise StyleError(f"style schedule: {text!r} is not a time "
                         "(seconds, m:ss or h:mm:ss.ms)")
    seconds = 0.0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


def format_time(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:06.3f}"


def parse_schedule(spec: str, transition: float) -> Schedule:
    """A --style value (cues or a .toml file) as a checked Schedule."""
    spec = spec.strip()
    if spec.lower().endswith(SCHEDULE_SUFFIX):
        return _read_file(Path(spec), transition)
    cues = []
    for part in spec.split(","):
        match = CUE.match(part)
        if match is None:
            raise StyleError(f"style schedule: {part.strip()!r} is not time:style")
        cues.append(Cue(parse_time(match.group(1)), match.group(2)))
    return _checked(cues, transition, "style schedule")


def _read_file(path: Path, transition: float) -> Schedule:
    data = read_toml(path, "schedule", StyleError)
    unknown = set(data) - {"transition", "cue"}
    if unknown:
        raise StyleError(f"{path}: unknown key {sorted(unknown)[0]!r} (use transition, [[cue]])")
    entries = data.get("cue", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise StyleError(f"{path}: cues are [[cue]] tables with at and style")
    cues = []
    for i, entry in enumerate(entries, 1):
        if set(entry) != {"at", "style"} or not isinstance(entry["style"], str):
            raise StyleError(f"{path}: cue {i} needs exactly at = TIME and style = \"NAME\"")
        cues.append(Cue(parse_time(str(entry["at"])), entry["style"].strip()))
    fade = data.get("transition", transition)
    if not isinstance(fade, (int, float)):
        raise StyleError(f"{path}: transition must be a number of seconds")
    return _checked(cues, float(fade), str(path))


def _checked(cues: list[Cue], transition: float, where: str) -> Schedule:
    if not cues:
        raise StyleError(f"{where}: no cues")
    if transition < 0 or not math.isfinite(transition):
        raise StyleError(f"{where}: transition must be 0 or more seconds, got {transition}")
    for before, cue in zip(cues, cues[1:], strict=False):
        if cue.time <= before.time:
            raise StyleError(
                f"{where}: times out of order: {format_time(cue.time)} ({cue.style}) "
                f"comes after {format_time(before.time)} ({before.style})"
            )
    for cue in cues:
        if not cue.style or "," in cue.style:
            raise StyleError(f"{where}: cue {format_time(cue.time)} needs one style spec")
    # Before the first cue a video would have no style: the first one starts at zero.
    cues = [Cue(0.0, cues[0].style), *cues[1:]]
    return Schedule(tuple(cues), transition)


def check_styles(schedule: Schedule) -> None:
    """Resolve every style of `schedule` (names, files, presets) without building a
    network: an unknown one is a one-line StyleError before any work."""
    for cue in schedule.cues:
        try:
            for name, weight in parse_spec(cue.style):
                resolve_component(name, weight)
        except StyleError as exc:
            raise StyleError(f"style schedule at {format_time(cue.time)}: {exc}") from None
