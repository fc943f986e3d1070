"""The three-stage pipeline on its own: stand-ins for the demuxer, engine and writer show
what goes where, how far decoding runs ahead, and how a failure or a cancel ends it."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidstyle.errors import Cancelled, InputError
from vidstyle.media.decode import DecodedFrame
from vidstyle.pipeline import DECODE_QUEUE_BATCHES, Pipeline

TIME_BASE = Fraction(1, 10)  # frame i is at i / 10 s
WAIT = 30  # seconds before a test gives up on a stage that should have moved


def frame(index: int, *, warmup: bool = False, pts: int | None = -1) -> DecodedFrame:
    image = np.full((4, 4, 3), index % 256, dtype=np.uint8)
    return DecodedFrame(image=image, pts=index if pts == -1 else pts, time_base=TIME_BASE,
                        duration=1, index=index, warmup=warmup)


def packet(seconds: float | None) -> av.Packet:
    side = av.Packet(b"audio")
    if seconds is not None:
        side.pts, side.time_base = round(seconds * 100), Fraction(1, 100)
    return side


class Source:
    """A demuxer: yields the given items (or endless frames), counting what it handed out."""

    path = Path("clip.mp4")

    def __init__(self, items=None, *, fail_after: int | None = None) -> None:
        self.given = items
        self.fail_after = fail_after
        self.count = 0

    def items(self):
        index = 0
        while self.given is None or index < len(self.given):
            if self.fail_after is not None and index == self.fail_after:
                raise InputError(self.path, "corrupt packet")
            yield frame(index) if self.given is None else self.given[index]
            self.count += 1
            index += 1


class Engine:
    """Inverts pixels; records batch sizes; can block or fail on a given call."""

    def __init__(self, *, fail_on: int | None = None, block: bool = False) -> None:
        self.batches: list[int] = []
        self.fail_on = fail_on
        self.entered = threading.Event()
        self.release = threading.Event()
        if not block:
            self.release.set()

    def stylize(self, images: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(images))
        self.entered.set()
        self.release.wait(WAIT)
        if self.fail_on is not None and len(self.batches) == self.fail_on:
            raise RuntimeError("out of memory")
        return 255 - images


class Writer:
    """Records frames and packets in the order they would be muxed."""

    def __init__(self, *, fail_on_frame: int | None = None) -> None:
        self.muxed: list[tuple[str, object]] = []
        self.closed = 0
        self.fail_on_frame = fail_on_frame

    def write_frame(self, decoded: DecodedFrame, image: np.ndarray) -> float | None:
        if decoded.index == self.fail_on_frame:
            raise OSError(28, "No space left on device")
        assert (image == 255 - decoded.image).all()
        self.muxed.append(("frame", decoded.index))
        return decoded.time

    def write_packet(self, side: av.Packet) -> None:
        seconds = None if side.pts is None else float(side.pts * side.time_base)
        self.muxed.append(("packet", seconds))

    def close(self) -> None:
        self.closed += 1

    @property
    def frames(self) -> list[int]:
        return [value for kind, value in self.muxed if kind == "frame"]


def run(source, engine=None, writer=None, **options):
    engine, writer = engine or Engine(), writer or Writer()
    pipeline = Pipeline(source, engine, writer, batch=options.pop("batch", 3), **options)
    return pipeline, pipeline.run(), engine, writer


def test_every_frame_goes_through_in_order_in_batches():
    counts: list[int] = []
    _, written, engine, writer = run(Source([frame(i) for i in range(10)]), batch=4,
                                     on_frames=counts.append)
    assert written == 10
    assert writer.frames == list(range(10))
    assert engine.batches == [4, 4, 2]  # the last batch is what is left
    assert counts == [4, 8, 10]  # progress after each batch, cumulative
    assert writer.closed == 1


def test_warmup_frames_are_stylized_but_not_written():
    items = [frame(i, warmup=i < 3) for i in range(8)]
    _, written, engine, writer = run(Source(items), batch=2)
    assert sum(engine.batches) == 8  # they primed the engine
    assert writer.frames == list(range(3, 8)) and written == 5


def test_side_packets_are_muxed_once_the_video_reaches_their_time():
    items = [packet(0.0), frame(0), packet(0.25), frame(1), frame(2), packet(None), frame(3),
             packet(0.9), frame(4)]
    _, _, _, writer = run(Source(items), batch=2)
    assert writer.muxed == [
        ("frame", 0), ("packet", 0.0),
        ("frame", 1), ("frame", 2),  # 0.25 s waits for the frame at 0.3 s
        ("frame", 3), ("packet", 0.25),
        ("packet", None),  # no timestamp: out at the first chance after those before it
        ("frame", 4), ("packet", 0.9),  # later than the last frame: flushed at the end
    ]


def test_a_frame_without_a_timestamp_does_not_flush_later_packets():
    items = [frame(0), packet(0.5), frame(1, pts=None), frame(5)]
    _, _, _, writer = run(Source(items), batch=1)
    assert writer.muxed == [("frame", 0), ("frame", 1), ("frame", 5), ("packet", 0.5)]


def start(pipeline: Pipeline) -> tuple[threading.Thread, list[BaseException]]:
    """Run `pipeline` in a thread; the list receives what `run` raised."""
    outcome: list[BaseException] = []

    def go() -> None:
        try:
            pipeline.run()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            outcome.append(exc)

    worker = threading.Thread(target=go)
    worker.start()
    return worker, outcome


def test_decoding_runs_only_a_bounded_distance_ahead_of_a_slow_network():
    source, engine, cancel = Source(), Engine(block=True), threading.Event()  # endless input
    pipeline = Pipeline(source, engine, Writer(), batch=2, cancel=cancel)
    worker, outcome = start(pipeline)
    assert engine.entered.wait(WAIT)
    for _ in range(WAIT * 100):
        if pipeline.decoded.full():
            break
        threading.Event().wait(0.01)
    assert pipeline.decoded.full()
    # One batch in the network, a full queue, and one frame waiting to be put.
    assert source.count <= 2 + DECODE_QUEUE_BATCHES * 2 + 1
    cancel.set()
    engine.release.set()
    worker.join(WAIT)
    assert not worker.is_alive() and isinstance(outcome[0], Cancelled)


def test_cancel_stops_every_stage_and_raises_cancelled():
    engine, writer, cancel = Engine(block=True), Writer(), threading.Event()
    worker, outcome = start(Pipeline(Source(), engine, writer, batch=2, cancel=cancel))
    assert engine.entered.wait(WAIT)
    cancel.set()
    engine.release.set()
    worker.join(WAIT)
    assert not worker.is_alive()
    assert isinstance(outcome[0], Cancelled) and "clip.mp4" in str(outcome[0])
    assert writer.closed == 0  # an unfinished file is never finalised


@pytest.mark.parametrize(
    ("source", "engine", "writer", "error", "message"),
    [
        (Source(fail_after=5), Engine(), Writer(), InputError, "corrupt packet"),
        (Source(), Engine(fail_on=2), Writer(), RuntimeError, "out of memory"),
        (Source(), Engine(), Writer(fail_on_frame=4), OSError, "No space left"),
    ],
    ids=["decode", "stylize", "encode"],
)
def test_the_first_error_of_any_stage_reaches_the_caller(source, engine, writer, error, message):
    pipeline = Pipeline(source, engine, writer, batch=2)
    with pytest.raises(error, match=message) as raised:
        pipeline.run()
    # The failing stage's own exception, and no other: the stages it stopped (the endless
    # decode among them) ended quietly instead of failing in turn.
    assert pipeline.errors == [raised.value]
    assert writer.closed == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("vidstyle-")]


class SecondBatchFails(Engine):
    """Its second batch waits for the writer's failure, then fails too."""

    def __init__(self, entered_second: threading.Event, writer_failed: threading.Event):
        super().__init__()
        self.entered_second, self.writer_failed = entered_second, writer_failed

    def stylize(self, images: torch.Tensor) -> torch.Tensor:
        if self.batches:
            self.entered_second.set()
            assert self.writer_failed.wait(WAIT)
            raise RuntimeError("a later error")
        return super().stylize(images)


class FirstFrameFails(Writer):
    """Fails on the first frame, once the network is busy with the second batch."""

    def __init__(self, entered_second: threading.Event, writer_failed: threading.Event):
        super().__init__(fail_on_frame=0)
        self.entered_second, self.writer_failed = entered_second, writer_failed

    def write_frame(self, decoded: DecodedFrame, image: np.ndarray) -> float | None:
        assert self.entered_second.wait(WAIT)
        try:
            return super().write_frame(decoded, image)
        finally:
            self.writer_failed.set()


def test_a_later_error_does_not_hide_the_first():
    events = threading.Event(), threading.Event()
    pipeline = Pipeline(Source(), SecondBatchFails(*events), FirstFrameFails(*events), batch=2)
    with pytest.raises(OSError, match="No space left"):
        pipeline.run()
    assert [type(e) for e in pipeline.errors] == [OSError, RuntimeError]
