"""Engines turn a stream of decoded frames into stylized frames.

`fast` runs a feed-forward network (optionally with a temporal filter); `gatys` optimises
each frame against VGG-19 losses; `scheduled` follows a style schedule over a fast one.
All honour `Engine` in `base.py`, so the pipeline, the progress display and the executors
treat them alike; `factory.build_engine` makes the one a job's settings name, and
`compiled/` keeps the fast engine's networks compiled once per machine.
"""
