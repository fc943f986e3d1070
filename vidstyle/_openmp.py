"""OpenMP's wait policy, set before anything loads PyTorch's OpenMP runtime.

OpenMP threads spin at the barrier after every parallel region by default, so a network
thread that shares a core with decode, encode, the flow filter or another program holds
them all up. Sleeping instead (``OMP_WAIT_POLICY=PASSIVE``) lets the network use every core
without that cost. The 26-style network, `--max-size 640`, flow filter, audio, on the
project's 2-core machine (docs/benchmarks.md, "Threads, again"):

* quiet, 264 frames: 2 threads spinning 42.5 s, 2 threads passive 44.3 s, 1 thread 47.7 s;
* beside two busy processes, 100 frames: 1 thread 58.2 s, 2 spinning 52.8 s, 2 passive
  41.7 s.

Passive with every core is never far from the best and is the best under load. The
runtime reads the variable once, when it loads (``import torch``): a program that imported
torch before vidstyle keeps its own policy. A policy the user set is kept.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
