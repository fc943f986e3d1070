"""Everything PyAV: probing inputs, decoding frames with their timestamps, encoding and
muxing the stylized frames beside stream-copied audio, subtitles and metadata.

This package knows nothing about networks or tensors beyond uint8 RGB arrays.
"""

from vidstyle.media.decode import DecodedFrame, Demuxer
from vidstyle.media.encode import VideoWriter
from vidstyle.media.probe import MediaInfo, probe

__all__ = ["DecodedFrame", "Demuxer", "MediaInfo", "VideoWriter", "probe"]
