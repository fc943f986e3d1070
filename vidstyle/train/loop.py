"""Train a Johnson transform network for a new style (Johnson et al. 2016, "Perceptual
Losses for Real-Time Style Transfer and Super-Resolution").

One painting, a folder of photos and/or videos, and the frozen VGG-19 of the Gatys engine:

    loss = content_weight * content(relu4_2)            # keep the photo's layout
         + style_weight   * sum_l Gram error(l)         # the painting's textures, 5 layers
         + tv_weight      * total variation             # no pixel noise
         + temporal_weight * masked warp error          # optional, video pairs (see below)
         + teacher_weight  * |output - teacher(photo)|  # optional distillation (see below)

Content and style terms are the relative squared errors of `vidstyle.losses`, so the
weights are dimensionless and carry over between loss networks; the defaults were tuned
by looking at previews (docs/training.md).

`JohnsonNet` clamps its output to [0, 1], and a clamp has zero gradient outside that range:
a pixel that overshoots would never be pulled back. Training therefore reads the network's
unclamped output (a forward hook on its last convolution) and passes it on through a
straight-through clamp: the losses see exactly the picture users will get, the gradient
flows as if there were no clamp.

Temporal loss (`temporal_weight` > 0; Huang et al. 2017 "Real-Time Neural Style Transfer
for Videos", Gao et al. 2018 "ReCoNet"): each step also stylizes two consecutive frames of
a training video, warps output t-1 to frame t along the optical flow of the *input*
frames (DIS, precomputed when the data is loaded) and penalises the squared difference on
the pixels the flow can be trusted at (forward-backward consistency mask).

Teacher (`teacher` names any style vidstyle can load, e.g. ``scream_arbitrary``): an L1
pull toward what an existing network makes of the same crop. Johnson et al. trained for
40,000 steps on a GPU; on a CPU a few thousand steps of the perceptual loss alone leave the
network blurry, because the Gram loss is a weak, slow signal for where edges go. A pixel
target from a network that already paints this style gives a dense signal from the first
step; the perceptual terms then pull the result toward the painting's own statistics,
which the teacher only approximates. Off by default: it is a shortcut for small budgets.

Checkpoints go to ``OUTPUT.train/`` beside the output file: ``network.safetensors`` (fp32),
``optimizer.pt`` (``torch.load(weights_only=True)``), ``state.json`` (step, settings,
recent losses) and ``preview_STEP.jpg``. `resume=True` continues from there. The final
network is a safetensors file of `JohnsonNet` state-dict keys (fp16 by default) whose
metadata names the style, steps and size: ``vidstyle styles add NAME FILE`` takes it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidstyle.device import resolve_device, resolve_precision
from vidstyle.errors import SettingsError
from vidstyle.images import to_tensor
from vidstyle.networks.johnson import JohnsonNet
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.weights import read_johnson_weights
from vidstyle.train.checkpoints import (
    checkpoint_dir_for,
    load_checkpoint,
    save_checkpoint,
    write_network,
    write_preview,
)
from vidstyle.train.data import TrainingData
from vidstyle.train.objective import (
    PerceptualLoss,
    UnclampedOutput,
    load_style_image,
    temporal_loss,
)
from vidstyle.train.settings import TrainResult, TrainSettings, TrainStep
from vidstyle.train.step import autocast_for


def train_style(
    style_image: str | Path,
    data: str | Path,
    output: str | Path,
    *,
    settings: TrainSettings | None = None,
    on_step: Callable[[TrainStep], None] | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train a `JohnsonNet` to paint like `style_image` on the photos/videos in `data`.

    Writes the network to `output` (safetensors, `JohnsonNet` keys) and checkpoints to
    ``output.train/`` every `settings.checkpoint_every` steps. With `resume`, continues
    from that folder's last checkpoint up to `settings.steps` in total. Raises InputError
    (unreadable data or checkpoint), StyleError (unreadable painting), SettingsError.
    """
    settings = (settings or TrainSettings()).validate()
    style_path, output = Path(style_image), Path(output)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    dtype = resolve_precision(settings.precision, device)
    torch.manual_seed(settings.seed)

    vgg = load_vgg19(settings.loss_net, device)
    loss = PerceptualLoss(vgg, load_style_image(style_path, settings.style_size).to(device),
                          settings)
    dataset = TrainingData(data, settings.size, video_frames=settings.video_frames,
                           pairs=settings.temporal_weight > 0, seed=settings.seed)
    network = JohnsonNet().to(device).train()
    if settings.init:
        network.load_state_dict(read_johnson_weights(settings.init))
    teacher = load_teacher(settings.teacher, device) if settings.teacher else None
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    folder = checkpoint_dir_for(output)
    preview = to_tensor(dataset.textured_crop())
    start, history = 0, []
    if resume:
        start, history, position = load_checkpoint(folder, network, optimizer)
        if position is not None:  # continue the crop sequence where the checkpoint was
            dataset.restore(position)
        else:
            dataset.reseed(settings.seed + start)
    run_history: list[dict[str, float]] = []
    stylize = UnclampedOutput(network)
    started = time.perf_counter()
    step = start
    for step in range(start + 1, settings.steps + 1):
        content = dataset.batch(settings.batch).to(device)
        with autocast_for(device, dtype):
            terms = training_terms(network, stylize, loss, content, dataset, settings, device,
                                   teacher)
            total = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        values = {name: float(value.detach()) for name, value in terms.items()}
        values["total"] = float(total.detach())
        if not math.isfinite(values["total"]):
            raise SettingsError(f"training diverged at step {step} (loss {values['total']}); "
                                "lower the learning rate or the style weight")
        run_history.append(values)
        written = None
        if step % settings.checkpoint_every == 0 or step == settings.steps:
            network.eval()
            save_checkpoint(folder, network, optimizer, step, settings, style_path,
                            history + run_history, dataset.position())
            write_preview(folder / f"preview_{step:06d}.jpg", network, preview)
            write_network(output, network, settings, style_path, step)
            network.train()
            written = folder
        if on_step is not None:
            on_step(TrainStep(step, settings.steps, values, time.perf_counter() - started,
                              written))
    stylize.handle.remove()
    if start >= settings.steps:  # nothing left to do; make sure the output exists
        write_network(output, network, settings, style_path, start)
    seconds = time.perf_counter() - started
    done = max(step - start, 0)
    return TrainResult(output, max(step, start), seconds, seconds / done if done else 0.0,
                       run_history, folder)


def training_terms(network: JohnsonNet, stylize: UnclampedOutput, loss: PerceptualLoss,
                   content: torch.Tensor, dataset: TrainingData, settings: TrainSettings,
                   device: torch.device, teacher: nn.Module | None = None,
                   ) -> dict[str, torch.Tensor]:
    """The weighted loss terms of one step. With the temporal loss, a pair of consecutive
    video frames joins the batch: content and style losses apply to it as well."""
    pair = dataset.pair() if settings.temporal_weight > 0 else None
    if pair is not None:
        frames = to_tensor(np.stack([pair.previous, pair.current])).to(device)
        content = torch.cat([content, frames])
    output = stylize(network, content)
    terms = loss(output, content)
    if teacher is not None:
        with torch.no_grad():
            target = teacher(content)
        terms["teacher"] = settings.teacher_weight * (output - target).abs().mean()
    if pair is not None:
        previous, current = output[-2:-1], output[-1:]
        terms["temporal"] = settings.temporal_weight * temporal_loss(previous, current, pair)
    return terms


def load_teacher(spec: str, device: torch.device) -> nn.Module:
    """The frozen network of style `spec` (a name, blend or file, as ``--style`` takes)."""
    from vidstyle.styles.resolve import load_style  # the catalogue is only needed here

    teacher = load_style(spec, device=device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher
