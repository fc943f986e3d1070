"""Train a Johnson transform network for a new style (`train_style`); see `loop` for the
objective and its terms, docs/training.md for the recipe and its measurements.

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
