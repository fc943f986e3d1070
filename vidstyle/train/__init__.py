"""A new style from a painting: fitted onto the shipped arbitrary-style network
(`fit_style`, the default of `vidstyle train`), or a whole Johnson transform network
trained from scratch (`train_style`); docs/training.md has the recipes and measurements.

    fit.py          the fit: one painting as the norm rows of the arbitrary network
    step.py         one optimisation step from weighted loss terms; autocast
    settings.py     TrainSettings, TrainStep, TrainResult
    data.py         crops of photos and video frames; frame pairs with flow
    objective.py    perceptual + temporal loss, straight-through clamp, the style target
    checkpoints.py  resumable state beside the output; the deliverable network file
    loop.py         the optimisation loop
    stability.py    `vidstyle stabilize`: fine-tune a shipped network to move with its input
"""

from vidstyle.images import to_tensor
from vidstyle.train.checkpoints import checkpoint_dir_for
from vidstyle.train.data import TrainingData
from vidstyle.train.loop import train_style
from vidstyle.train.objective import load_style_image, straight_through_clamp, temporal_loss
from vidstyle.train.settings import TrainResult, TrainSettings, TrainStep, with_overrides

__all__ = [
    "TrainResult", "TrainSettings", "TrainStep", "TrainingData", "checkpoint_dir_for",
    "load_style_image", "straight_through_clamp", "temporal_loss", "to_tensor", "train_style",
    "with_overrides",
]
