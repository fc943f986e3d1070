"""What became of each input stream in an output: stylized, copied, regenerated,
transcoded or dropped (and why), the packets left out, and whether vidstyle lost anything
a player could play (`MuxReport.data_lost`, the CLI's exit status 3)."""

from __future__ import annotations

from dataclasses import dataclass, field

import av

CHAPTER_TRACK = "chapter track (chapters are copied as chapters)"


@dataclass
class StreamFate:
    """What became of one input stream: "stylized", "copied", "regenerated",
    "transcoded" or "dropped" (with the reason)."""

    index: int
    kind: str
    codec: str
    fate: str
    why: str = ""
    language: str | None = None

    def to_dict(self) -> dict:
        return {"index": self.index, "kind": self.kind, "codec": self.codec,
                "fate": self.fate, "why": self.why, "language": self.language}


@dataclass
class MuxReport:
    """What happened to the input's streams (for the job summary and tests)."""

    copied: list[int] = field(default_factory=list)
    transcoded: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    skipped_packets: int = 0  # input packets not carried: damaged, or refused
    refused_packets: int = 0  # of those, the ones the muxer refused (vidstyle's loss)
    silence_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    streams: list[StreamFate] = field(default_factory=list)

    @property
    def data_lost(self) -> bool:
        """vidstyle left out something of the input that a player could play: a dropped
        stream, a packet the muxer refused. The input's own damage (a packet that does
        not decode, replaced by silence of its length) is a warning, not a loss."""
        return bool(self.refused_packets or any(
            f.fate == "dropped" and f.why != CHAPTER_TRACK for f in self.streams))

    def record(self, source: av.stream.Stream, fate: str, why: str = "", *,
               warn: bool = False, codec: str | None = None) -> None:
        """Note `source`'s fate; `warn` adds the one-line warning a drop gets."""
        if codec is None:
            ctx = source.codec_context
            codec = ctx.name if ctx is not None else "none"
        self.streams.append(StreamFate(
            source.index, source.type, codec, fate, why, source.metadata.get("language")))
        if fate == "dropped":
            self.dropped.append(source.index)
        if warn:
            self.warnings.append(f"stream #{source.index} dropped: {why}")

    def drop(self, source: av.stream.Stream, why: str, codec: str | None = None) -> None:
        self.record(source, "dropped", why, warn=True, codec=codec)
