"""The fast engine following a style schedule (vidstyle.styles.schedule).

One `FastEngine`, one temporal filter: at every change the network under it is swapped
and the filter's state carries across, so the previous style's last frames are blended
into the new style's first ones as usual, with no reset (a reset is a one-frame flash of
unfiltered texture). A transition is a crossfade in style space where the two styles
share one: a blend spec (``scream_arbitrary:0.7,wave_arbitrary:0.3``) gives interpolated
style vectors for painting styles and interpolated conditional-norm parameters for the 26
presets (`vidstyle.styles.load_style`). Johnson networks, or two styles of different
families, have no shared space: their outputs are blended (`WeightedOutputs`).

The engine needs each frame's time: `timed(demuxer)` wraps the demuxer so that every
frame it hands the pipeline leaves its time in a queue, which `stylize` reads in the same
order (frames reach the engine in decode order, warm-up frames included).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from vidstyle.config import Settings
from vidstyle.engines.base import EngineBase
from vidstyle.engines.fast import FastEngine
from vidstyle.errors import SettingsError
from vidstyle.media.decode import DecodedFrame
from vidstyle.networks.johnson import WeightedOutputs
from vidstyle.styles import load_style, parse_spec
from vidstyle.styles.resolve import resolve_component
from vidstyle.styles.schedule import Schedule, check_styles, parse_schedule

# Crossfade weights are rounded to this many steps: one network per step at most (a 2 s
# transition at 25 fps has 50 frames, so steps of about one frame).
TRANSITION_STEPS = 48
# Families whose blends are interpolated in style space (vidstyle.styles.resolve).
STYLE_SPACE_FAMILIES = ("arbitrary", "conditional")


class ScheduledEngine(EngineBase):
    """Implements `vidstyle.engines.base.Engine`: the scheduled style at each frame."""

    def __init__(self, schedule: Schedule, settings: Settings, device: torch.device,
                 dtype: torch.dtype, temporal_filter=None) -> None:
        self.schedule = schedule
        self.settings = settings
        self.device = device
        self.times: collections.deque[float | None] = collections.deque()
        self._last_time = 0.0
        self._current: tuple | None = None
        first = schedule.cues[0].style
        self.inner = FastEngine(self._single(first), device, dtype,
                                max_size=settings.max_size, temporal_filter=temporal_filter)
        self._current = (first, first, 1.0)

    # -- the Engine interface ----------------------------------------------------------------

    def reset(self) -> None:
        self.inner.reset()
        self.times.clear()

    def close(self) -> None:
        self.inner.close()

    def stylize(self, frames: torch.Tensor) -> torch.Tensor:
        keys = [self.key_at(self._next_time()) for _ in range(len(frames))]
        outputs, start = [], 0
        for end in range(1, len(keys) + 1):
            if end == len(keys) or keys[end] != keys[start]:
                self._use(keys[start])
                outputs.append(self.inner.stylize(frames[start:end]))
                start = end
        return torch.cat(outputs)

    def check_video(self, src: Path, duration: float | None) -> None:
        """Every cue inside the video, before any work."""
        self.schedule.check_within(duration, src)

    def frames_from(self, demuxer) -> _TimedDemuxer:
        """`demuxer`, leaving each frame's time for `stylize`."""
        return _TimedDemuxer(demuxer, self.times)

    # -- which network -----------------------------------------------------------------------

    def key_at(self, time: float) -> tuple[str, str, float]:
        """(from, to, weight rounded to TRANSITION_STEPS) at `time`."""
        before, after, weight = self.schedule.mix_at(time)
        weight = round(weight * TRANSITION_STEPS) / TRANSITION_STEPS
        if weight in (0.0, 1.0) or before == after:
            style = after if weight == 1.0 else before
            return style, style, 1.0
        return before, after, weight

    def network_for(self, key: tuple[str, str, float]) -> nn.Module:
        before, after, weight = key
        if before == after:
            return self._single(after)
        if self._family(before) == self._family(after) in STYLE_SPACE_FAMILIES:
            return self._load(f"{before}:{1.0 - weight:.6f},{after}:{weight:.6f}")
        return WeightedOutputs([self._single(before), self._single(after)],
                               [1.0 - weight, weight])

    def _use(self, key: tuple[str, str, float]) -> None:
        if key != self._current:
            self.inner.use_network(self.network_for(key))
            self._current = key

    def _next_time(self) -> float:
        time = self.times.popleft() if self.times else None
        if time is None:  # a frame without a timestamp: just after the previous one
            time = self._last_time
        self._last_time = time
        return time

    @functools.cache  # noqa: B019 - one engine per job; a handful of styles
    def _single(self, style: str) -> nn.Module:
        return self._load(style)

    def _load(self, spec: str) -> nn.Module:
        return load_style(spec, strength=self.settings.strength,
                          preserve_color=self.settings.preserve_color, device=self.device)

    @functools.cache  # noqa: B019
    def _family(self, style: str) -> str:
        families = {resolve_component(n, w).family for n, w in parse_spec(style)}
        return families.pop() if len(families) == 1 else "mixed"


class _TimedDemuxer:
    """A demuxer whose frames leave their time in `times` on the way to the engine."""

    def __init__(self, demuxer, times: collections.deque) -> None:
        self._demuxer = demuxer
        self._times = times

    def items(self) -> Iterator:
        for item in self._demuxer.items():
            if isinstance(item, DecodedFrame):
                self._times.append(item.time)
            yield item

    def __getattr__(self, name: str):
        return getattr(self._demuxer, name)


def build_scheduled_engine(settings: Settings, device: torch.device, dtype: torch.dtype,
                           temporal_filter=None) -> ScheduledEngine:
    """The engine for a `settings.style` that is a schedule; every style resolved first,
    so a mistake is one line before any work."""
    if settings.engine != "fast":
        raise SettingsError("style schedules need --engine fast")
    schedule = parse_schedule(settings.style, settings.transition)
    check_styles(schedule)
    return ScheduledEngine(schedule, settings, device, dtype, temporal_filter)
