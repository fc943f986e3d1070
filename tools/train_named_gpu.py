"""Train the five named styles (scream, wave, wreck, udnie, starry_night) in one process on
one GPU, inside a wall-clock budget (default 8 minutes of training).

Why one process: the five networks see the same content batch each step, so the batch is
read, uploaded and pushed through VGG-19 for its content features *once*; the five
outputs then go through VGG together as one ``5N``-image batch (one big convolution per
layer keeps a data-centre GPU busy where five small ones would not), and one Adam step
updates all five networks (Adam is per-parameter, so this is the same as five optimisers).
bf16 autocast (no gradient scaler needed: bf16 has float32's range) and channels-last
memory for the networks and VGG, which is what the tensor cores want.

Each network gets the loss of `vidstyle train` (`vidstyle.train.PerceptualLoss`) with the
same settings; the files it writes are what `vidstyle train` writes (fp16 safetensors,
metadata: style, steps, crop size, loss weights), so the catalogue takes them as they are.

    python tools/train_named_gpu.py --data TRAIN_DIR --out OUT_DIR [--minutes 8] \\
        [--size 256] [--batch 4] [--style-size 512] [--styles scream wave ...]

The data folder is one `tools/build_training_set.py` wrote (or any folder of photos). A
lent GPU machine cannot reach the registries and takes 64 MiB of carried files: build the
set here with ``--side 256`` and carry its ``photos/`` and ``frames/`` (about 4,000 crops
at JPEG quality 80 fit), or fewer crops at full quality.

On a CPU the same script runs (fp32), which is how its test runs it, at tiny scale.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import replace
from pathlib import Path
from queue import Queue

import torch

from vidstyle.device import resolve_device, resolve_precision
from vidstyle.networks.johnson import JohnsonNet
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.train import TrainingData, TrainSettings, load_style_image
from vidstyle.train.checkpoints import write_network
from vidstyle.train.objective import PerceptualLoss, UnclampedOutput
from vidstyle.train.step import autocast_for

REPO = Path(__file__).resolve().parent.parent
PAINTINGS = REPO / "samples" / "paintings"
STYLES = ("scream", "wave", "wreck", "udnie", "starry_night")
# Batches read ahead by a helper thread (OpenCV's JPEG decoder releases the GIL), so the
# GPU never waits for the disk.
PREFETCH = 8
# Steps between the time checks and progress lines (a sync with the GPU each time).
REPORT_EVERY = 50


def painting_path(name: str) -> Path:
    matches = sorted(PAINTINGS.glob(f"{name}.*"))
    if not matches:
        raise SystemExit(f"no painting for {name} in {PAINTINGS}")
    return matches[0]


def prefetched_batches(data: TrainingData, batch: int, stop: threading.Event) -> Queue:
    queue: Queue = Queue(PREFETCH)

    def fill() -> None:
        while not stop.is_set():
            queue.put(data.batch(batch).pin_memory() if torch.cuda.is_available()
                      else data.batch(batch))

    threading.Thread(target=fill, daemon=True, name="vidstyle-batches").start()
    return queue


class NamedStyles:
    """The networks, their losses and one optimizer over all of them."""

    def __init__(self, names: list[str], settings: TrainSettings, device: torch.device) -> None:
        self.names = names
        self.settings = settings
        self.vgg = load_vgg19(settings.loss_net, device).to(memory_format=torch.channels_last)
        self.losses = [
            PerceptualLoss(self.vgg, load_style_image(painting_path(name),
                                                      settings.style_size).to(device), settings)
            for name in names
        ]
        self.networks = [JohnsonNet().to(device).to(memory_format=torch.channels_last).train()
                         for _ in names]
        self.stylizers = [UnclampedOutput(network) for network in self.networks]
        parameters = [p for network in self.networks for p in network.parameters()]
        self.optimizer = torch.optim.Adam(parameters, lr=settings.learning_rate)

    def step(self, content: torch.Tensor) -> list[float]:
        """One optimisation step of every network on the same batch; their total losses."""
        loss = self.losses[0]
        target = loss.content_target(content)  # shared: every style keeps the same photo
        outputs = [stylize(network, content)
                   for stylize, network in zip(self.stylizers, self.networks, strict=True)]
        features = self.vgg.features(
            torch.cat(outputs).contiguous(memory_format=torch.channels_last), loss.layers)
        count = content.shape[0]
        totals = []
        for index, (output, style_loss) in enumerate(zip(outputs, self.losses, strict=True)):
            mine = {layer: value[index * count:(index + 1) * count]
                    for layer, value in features.items()}
            totals.append(sum(style_loss.terms(output, mine, target).values()))
        self.optimizer.zero_grad(set_to_none=True)
        sum(totals).backward()
        self.optimizer.step()
        return [float(total.detach()) for total in totals]


def train_all(data: Path, out: Path, settings: TrainSettings, names: list[str],
              minutes: float, device_name: str = "auto") -> dict[str, int]:
    """Train until `settings.steps` or `minutes` run out; returns {style: steps done}."""
    device = resolve_device(device_name)
    dtype = resolve_precision("bf16" if device.type == "cuda" else settings.precision, device)
    torch.manual_seed(settings.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    styles = NamedStyles(names, settings, device)
    dataset = TrainingData(data, settings.size, video_frames=settings.video_frames,
                           seed=settings.seed)
    stop = threading.Event()
    batches = prefetched_batches(dataset, settings.batch, stop)
    started = time.perf_counter()
    step = 0
    try:
        for step in range(1, settings.steps + 1):
            content = batches.get().to(device, non_blocking=True)
            content = content.contiguous(memory_format=torch.channels_last)
            with autocast_for(device, dtype):
                totals = styles.step(content)
            if step % REPORT_EVERY == 0 or step == 1:
                elapsed = time.perf_counter() - started
                print(f"step {step}  {elapsed:6.1f} s  " + "  ".join(
                    f"{name} {total:.3f}" for name, total in zip(names, totals, strict=True)),
                    flush=True)
                if elapsed > minutes * 60:
                    break
    finally:
        stop.set()
    out.mkdir(parents=True, exist_ok=True)
    for name, network in zip(names, styles.networks, strict=True):
        network.eval()
        write_network(out / f"johnson_{name}.safetensors", network,
                      replace(settings, style_name=name), painting_path(name), step)
    print(f"{step} steps in {time.perf_counter() - started:.1f} s -> {out}")
    return dict.fromkeys(names, step)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--styles", nargs="+", default=list(STYLES), choices=STYLES)
    parser.add_argument("--minutes", type=float, default=8.0, help="training time budget")
    parser.add_argument("--steps", type=int, default=40_000, help="at most this many steps")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--style-size", type=int, default=512)
    parser.add_argument("--style-weight", type=float, default=TrainSettings.style_weight)
    parser.add_argument("--lr", type=float, default=TrainSettings.learning_rate)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="on CPUs (GPUs: always bf16)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = TrainSettings(steps=args.steps, size=args.size, batch=args.batch,
                             style_size=args.style_size, style_weight=args.style_weight,
                             learning_rate=args.lr, seed=args.seed,
                             precision=args.precision).validate()
    train_all(args.data, args.out, settings, args.styles, args.minutes, args.device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
