"""Benchmarks: speed, memory and flicker, each measured the way `vidstyle` runs.

The package imports `vidstyle._openmp` first, before any benchmark imports torch, so that
every `python -m benchmarks.X` runs with the CLI's OpenMP wait policy. Without it, the
null-network pipeline (`benchmarks.pipeline --null-network`) at 640x360 with the flow
filter spent 31.0 CPU s on 264 frames with spinning threads, against the CLI's 28.9 s for
the whole run *with* the 26-style network (round 6, docs/benchmarks.md).
"""

import vidstyle._openmp  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
