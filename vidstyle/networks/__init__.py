"""Style networks: plain `nn.Module`s, one file per family.

The one interface every feed-forward style network honours (the engines rely on nothing
else):

* `forward(x)` maps an ``N x 3 x H x W`` float batch with values in ``[0, 1]`` (RGB) to a
  batch of the same shape and range;
* the attribute `size_multiple` (int) says what H and W must be divisible by; the engine
  reflect-pads frames up to it and crops the result back, so any frame size works.

Networks never see files, paths or video: weights arrive as tensors (`state_dict`), and
frames arrive as tensors.
"""
