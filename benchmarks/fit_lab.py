"""The fits that lost the ablation (docs/training.md), kept so their rows can be rerun.

The product fits every instance norm's rows of the arbitrary-style network
(`vidstyle.train.fit`). This runs the same objective (`FitLoss`: Gatys content and Gram
terms, the stability term) on the other candidates:

* ``--base arbitrary --params vector``: only the arbitrary network's 100-number style
  vector, from the predictor's guess;
* ``--base conditional``: the norm rows of the stabilized 26-style network the presets run
  (Dumoulin et al. 2017, sec. 3.4: one new row per norm), starting from the preset whose
  output is closest to the painting (Gram error on two crops).

    python -m benchmarks.fit_lab PAINTING OUT.pt --base conditional [--steps N]
        [--content-weight W] [--stability-weight K] [--style-size Z]
    python -m benchmarks.fit score scream PHOTOS lab:conditional:OUT.pt lab:vector:OUT2.pt

Results are written with `torch.save` (tensors only; read back with weights_only=True).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn

from vidstyle.device import resolve_precision
from vidstyle.losses import gram_matrix, style_loss
from vidstyle.networks.arbitrary import STYLE_DIM, ArbitraryStylizer, prepare_style_image
from vidstyle.networks.conditional import MultiStyleNet, one_hot_style
from vidstyle.styles.lossnet import load_vgg19
from vidstyle.styles.paintings import load_predictor, read_style_image
from vidstyle.styles.resolve import load_multistyle
from vidstyle.styles.targets import style_target_from_image
from vidstyle.train.data import TrainingData
from vidstyle.train.fit import (
    FIT_SET_DIR,
    STYLE_LAYERS,
    FitLoss,
    FitSettings,
    shipped_transformer,
)

STYLE_SUFFIXES = (".norm.scale", ".norm.shift")
PROBE_SIZE = 128  # crops on which the presets are compared with the painting


def is_style_parameter(name: str) -> bool:
    return name.endswith(STYLE_SUFFIXES)


def one_style_network(base: MultiStyleNet, rows: dict[str, torch.Tensor]) -> MultiStyleNet:
    """`base`'s convolutions, frozen, with one style: `rows` (one C-vector per norm)."""
    network = MultiStyleNet(num_styles=1, residual_blocks=len(base.residual))
    state = {k: (rows[k].reshape(1, -1) if is_style_parameter(k) else v)
             for k, v in base.state_dict().items()}
    state["style_weights"] = torch.ones(1)
    network.load_state_dict(state)
    for name, parameter in network.named_parameters():
        parameter.requires_grad_(is_style_parameter(name))
    return network


def preset_rows(base: MultiStyleNet, preset: int) -> dict[str, torch.Tensor]:
    return {k: v[preset].detach().clone() for k, v in base.state_dict().items()
            if is_style_parameter(k)}


@torch.no_grad()
def closest_preset(base: MultiStyleNet, crops: torch.Tensor, vgg, target) -> int:
    errors = []
    for preset in range(base.num_styles):
        output = base.set_style_weights(one_hot_style(preset, base.num_styles))(crops)
        grams = {k: gram_matrix(v) for k, v in vgg.features(output, STYLE_LAYERS).items()}
        errors.append(float(style_loss(grams, target.grams)))
    return min(range(len(errors)), key=errors.__getitem__)


class VectorOnly(nn.Module):
    """The arbitrary network, frozen, with only its style vector to train."""

    size_multiple = 4

    def __init__(self, vector: torch.Tensor) -> None:
        super().__init__()
        self.transformer = shipped_transformer().requires_grad_(False)
        self.style = nn.Parameter(vector.reshape(1, STYLE_DIM).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transformer(x, self.style.expand(x.shape[0], -1))


def load_result(path: Path, kind: str) -> nn.Module:
    """A saved lab fit as a plain style network (`kind`: vector or conditional)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if kind == "vector":
        return ArbitraryStylizer(shipped_transformer(), state["style"]).eval()
    return one_style_network(load_multistyle(), state).eval()


def build(args: argparse.Namespace, dataset: TrainingData, vgg, target) -> nn.Module:
    if args.base == "conditional":
        base = load_multistyle()
        probe = nn.functional.interpolate(dataset.batch(2), size=(PROBE_SIZE,) * 2, mode="area")
        preset = closest_preset(base, probe, vgg, target)
        print(f"starting from preset {preset}")
        return one_style_network(base, preset_rows(base, preset))
    with torch.no_grad():
        vector = load_predictor()(prepare_style_image(read_style_image(args.painting)))
    return VectorOnly(vector)


def result_of(network: nn.Module) -> dict[str, torch.Tensor]:
    if isinstance(network, VectorOnly):
        return {"style": network.style.detach().clone()}
    return {k: v[0].detach().clone() for k, v in network.state_dict().items()
            if is_style_parameter(k)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("painting", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--base", choices=("arbitrary", "conditional"), default="conditional")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--content-weight", type=float, default=FitSettings.content_weight)
    parser.add_argument("--stability-weight", type=float, default=FitSettings.stability_weight)
    parser.add_argument("--style-size", type=int, default=FitSettings.style_size)
    parser.add_argument("--lr", type=float, default=FitSettings.learning_rate)
    args = parser.parse_args(argv)
    settings = FitSettings(content_weight=args.content_weight, style_size=args.style_size,
                           stability_weight=args.stability_weight, learning_rate=args.lr)
    generator = torch.Generator().manual_seed(settings.seed)
    vgg = load_vgg19()
    target = style_target_from_image(args.painting, vgg, STYLE_LAYERS, settings.style_size)
    dataset = TrainingData(FIT_SET_DIR, settings.size, seed=settings.seed)
    network = build(args, dataset, vgg, target)
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=settings.learning_rate)
    loss = FitLoss(vgg, target, settings)
    dtype = resolve_precision("auto", torch.device("cpu"))
    started = time.perf_counter()
    for _ in range(args.steps):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            terms = loss(network, dataset.batch(settings.batch), generator)
        total = sum(terms.values())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    torch.save(result_of(network), args.output)
    print(f"{args.output}: {args.base}, {args.steps} steps in {seconds:.0f} s "
          f"({seconds / args.steps:.2f} s/step)")


if __name__ == "__main__":
    main()
