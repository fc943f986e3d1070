"""AVI inputs as old cameras and DVD rippers wrote them: MPEG-4 Part 2 with B-frames (FFmpeg
decodes the first frame one tick late, as the reported Xvid/DivX file), and AC-3 audio
with one packet that does not decode."""

from __future__ import annotations

import av
import numpy as np


def make_b_frame_clip(path, codec: str, frames: int = 10, rate: int = 24, **options):
    """A clip whose encoder reorders frames (B-frames): in AVI, FFmpeg decodes the
    first frame at one tick (0.0417 s at 24 fps), as the reported Xvid/DivX file."""
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate, options=options)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for n in range(frames):
            picture = np.full((48, 64, 3), 20 * n % 255, np.uint8)
            picture[:, n * 4:n * 4 + 8] = 255
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = n
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    return path


def make_ac3_avi(path, seconds: float, damaged_packet: int):
    """MPEG-4 video and AC-3 audio in AVI, one audio packet garbled (the reported clip)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        audio = container.add_stream("ac3", rate=48000)
        audio.codec_context.layout = "stereo"
        for n in range(int(seconds * 25)):
            frame = av.VideoFrame.from_ndarray(np.full((24, 32, 3), n * 9 % 255, np.uint8),
                                               format="rgb24")
            frame.pts = n
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        tone = (0.2 * np.sin(np.arange(int(seconds * 48000)) / 20)).astype(np.float32)
        count = 0
        for start in range(0, len(tone), 1536):
            chunk = np.zeros(1536, np.float32)
            chunk[:len(tone[start:start + 1536])] = tone[start:start + 1536]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp",
                                               layout="stereo")
            frame.sample_rate, frame.pts = 48000, start
            for packet in audio.encode(frame):
                if count == damaged_packet:
                    broken = av.Packet(bytes([0xFF]) * packet.size)
                    broken.pts, broken.dts = packet.pts, packet.dts
                    broken.time_base, broken.stream = packet.time_base, packet.stream
                    packet = broken
                container.mux(packet)
                count += 1
        container.mux(audio.encode(None))
    return path
