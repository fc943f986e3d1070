"""Three stages in three threads, joined by bounded queues:

    decode (PyAV demux + decode + RGB)  ->  stylize (engine, batched)  ->  encode + mux

Bounded queues keep memory flat however long the video, and let decoding and encoding
(serial, CPU-bound) overlap with inference so the accelerator never waits on them.
Packets of copied streams (audio, subtitles) bypass the network: the decoder hands them
to the encoder through a side queue, and the encoder muxes each one once the video has
reached its timestamp, so the output stays interleaved.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
import torch

from vidstyle.engines.base import Engine
from vidstyle.errors import Cancelled
from vidstyle.media.decode import DecodedFrame, Demuxer
from vidstyle.media.encode import VideoWriter

# Decoded frames waiting for the network, in batches: two batches in flight let the
# decoder fill the next one while the current one runs.
DECODE_QUEUE_BATCHES = 2
# Stylized batches waiting for the encoder.
ENCODE_QUEUE_BATCHES = 2
# How often blocked stages look up to see whether another stage failed or was cancelled.
POLL_SECONDS = 0.1

_END = object()


def packet_time(packet: av.Packet) -> float:
    """Seconds; packets without a timestamp go out at once."""
    return float("-inf") if packet.pts is None else float(packet.pts * packet.time_base)


@dataclass
class StyledBatch:
    frames: list[DecodedFrame]
    images: np.ndarray  # N x H x W x 3 uint8


class Pipeline:
    """Runs one video through `engine` from `demuxer` to `writer`."""

    def __init__(
        self,
        demuxer: Demuxer,
        engine: Engine,
        writer: VideoWriter,
        *,
        batch: int,
        on_frames: Callable[[int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.demuxer = demuxer
        self.engine = engine
        self.writer = writer
        self.batch = batch
        self.on_frames = on_frames or (lambda done: None)
        self.cancel = cancel or threading.Event()
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.decoded: queue.Queue = queue.Queue(maxsize=DECODE_QUEUE_BATCHES * batch)
        self.styled: queue.Queue = queue.Queue(maxsize=ENCODE_QUEUE_BATCHES)
        self.side_packets: collections.deque[av.Packet] = collections.deque()
        self.frames_written = 0

    # -- orchestration -------------------------------------------------------------------

    def run(self) -> int:
        """Process the whole video; return the number of frames written.

        Re-raises the first error of any stage; raises Cancelled if `cancel` was set.
        """
        threads = [
            threading.Thread(target=self._guard, args=(self._decode,), name="vidstyle-decode"),
            threading.Thread(target=self._guard, args=(self._stylize,), name="vidstyle-stylize"),
            threading.Thread(target=self._guard, args=(self._encode,), name="vidstyle-encode"),
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(POLL_SECONDS)
                    if self.cancel.is_set():
                        self.stop.set()
        except KeyboardInterrupt:
            self.stop.set()
            self.cancel.set()  # reaches an engine that checks it inside a long frame
            for thread in threads:
                thread.join()
            raise
        if self.errors:
            raise self.errors[0]
        if self.cancel.is_set():
            raise Cancelled(f"{self.demuxer.path}: cancelled")
        return self.frames_written

    def _guard(self, stage: Callable[[], None]) -> None:
        try:
            stage()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.errors.append(exc)
            self.stop.set()

    def _put(self, q: queue.Queue, item: object) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue) -> object | None:
        while not self.stop.is_set():
            try:
                return q.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
        return None

    # -- stages --------------------------------------------------------------------------

    def _decode(self) -> None:
        for item in self.demuxer.items():
            if self.stop.is_set():
                return
            if isinstance(item, av.Packet):
                self.side_packets.append(item)
            elif not self._put(self.decoded, item):
                return
        self._put(self.decoded, _END)

    def _stylize(self) -> None:
        # No inference_mode here: each engine chooses (the Gatys engine needs autograd).
        while True:
            frames, ended = self._next_batch()
            if frames:
                images = torch.from_numpy(np.stack([f.image for f in frames]))
                styled = self.engine.stylize(images).numpy()
                if not self._put(self.styled, StyledBatch(frames, styled)):
                    return
            if ended:
                self._put(self.styled, _END)
                return

    def _next_batch(self) -> tuple[list[DecodedFrame], bool]:
        frames: list[DecodedFrame] = []
        while len(frames) < self.batch:
            item = self._get(self.decoded)
            if item is None:
                return [], True
            if item is _END:
                return frames, True
            frames.append(item)
        return frames, False

    def _encode(self) -> None:
        while True:
            item = self._get(self.styled)
            if item is None:
                return
            if item is _END:
                break
            for frame, image in zip(item.frames, item.images, strict=True):
                if frame.warmup:
                    continue
                time = self.writer.write_frame(frame, image)
                self.frames_written += 1
                if time is not None:  # a frame without a timestamp tells no time: wait
                    self._mux_side_packets(until=time)
            self.on_frames(self.frames_written)
        self._mux_side_packets(until=None)
        self.writer.close()

    def _mux_side_packets(self, until: float | None) -> None:
        """Mux copied packets whose time the video has reached (all of them if None)."""
        while self.side_packets:
            packet = self.side_packets[0]
            if until is not None and packet_time(packet) > until:
                return
            self.writer.write_packet(self.side_packets.popleft())
