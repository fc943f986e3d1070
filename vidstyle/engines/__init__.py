"""Engines turn a stream of decoded frames into stylized frames.

`fast` runs a feed-forward network (optionally with a temporal filter); `gatys` optimises
each frame against VGG-19 losses. Both honour `Engine` in `base.py`, so the pipeline,
the progress display and the executors treat them alike.
"""
