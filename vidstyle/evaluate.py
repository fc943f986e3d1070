"""Measure a stylized video: temporal stability (warping error), style and content distance.

Warping error (Lai et al. 2018, "Learning Blind Video Temporal Consistency", eq. 9): for
each pair of consecutive frames, warp output frame t-1 to frame t along the optical flow
of the ORIGINAL video, and average the squared difference to output frame t over the
pixels the flow can be trusted at (forward-backward consistency, no motion boundary):

    E_pair(t) = sum_x M_t(x) * ||O_t(x) - warp(O_{t-1})(x)||^2 / sum_x M_t(x)

with O in RGB [0, 1] and ||.||^2 summed over the three channels (so a pixel's error is at
most 3). The video's score is the mean of E_pair over its pairs; a pair whose mean
confidence (`flow_with_confidence`) is under `CUT_COVERAGE` is a scene cut, left out
(NaN). The same warp applied to the original frames gives the floor: what the flow
itself cannot explain (lighting, blur, flow errors). A ratio stylized / original near 1
means the stylization adds no flicker of its own.

Style and content distance use the VGG-19 of the Gatys engine on a sample of frames: the
Gram-matrix loss to the style image and the feature loss to the original frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from vidstyle.errors import InputError, MissingExtraError, OutputError
from vidstyle.images import fit_long_side, resize_image, to_tensor
from vidstyle.temporal.flow import (
    CUT_COVERAGE,
    FlowEstimator,
    flow_with_confidence,
    warp_backward,
)

# VGG is the slow part on a CPU (about 1 s a frame at 384 px on 2 cores): the distances
# are averaged over this many frames spread evenly through the evaluated span.
VGG_SAMPLE_FRAMES = 8
# Long side (pixels) the VGG distances are measured at when `size` is not given: style
# statistics depend on scale, so a fixed size keeps scores comparable across videos.
VGG_SIZE = 384


@dataclass
class EvalReport:
    """The scores of one stylized video against its original (see the module docstring)."""

    original: str
    stylized: str
    frames: int
    warping_error: float
    warping_error_original: float
    warping_ratio: float
    style_distance: float | None = None
    content_distance: float | None = None
    style: str | None = None
    size: tuple[int, int] | None = None  # (height, width) the scores were measured at
    per_frame_warping: list[float] = field(default_factory=list)
    per_frame_warping_original: list[float] = field(default_factory=list)
    sampled_frames: list[int] = field(default_factory=list)  # indices used for VGG scores
    per_frame_style: list[float] = field(default_factory=list)
    per_frame_content: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; NaN (a pair across a scene cut) becomes None."""
        data = asdict(self)
        data["size"] = list(self.size) if self.size else None
        return {key: json_safe(value) for key, value in data.items()}


def json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


# ----------------------------------------------------------------------------- decoding


def read_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """The video's frames as RGB uint8 ``H x W x 3`` arrays, in display order.

    Raises InputError for a missing file, something that is not a video, or a video
    without a single decodable frame. Validation happens on the first `next()`.
    """
    # Imported here so that `import vidstyle.evaluate` stays light for the CLI's --help.
    from vidstyle.media import Demuxer, probe

    path = Path(path)
    info = probe(path)
    count = 0
    with Demuxer(info) as demuxer:
        for item in demuxer.items():
            if max_frames is not None and count >= max_frames:
                return
            count += 1
            yield item.image
    if count == 0:
        raise InputError(path, "has no decodable video frames")


def paired_frames(
    original: str | Path,
    stylized: str | Path,
    max_frames: int | None = None,
    size: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(original, stylized) frames paired in order, both at the original's (fitted) size.

    Pairing stops at the shorter video. The stylized video may have any resolution: it is
    resized to the original's, which `size` may shrink for speed.
    """
    shape: tuple[int, int] | None = None
    pairs = zip(read_frames(original, max_frames), read_frames(stylized, max_frames), strict=False)
    for frame_in, frame_out in pairs:
        if shape is None:
            shape = fit_long_side(*frame_in.shape[:2], size)
        yield resize_image(frame_in, shape), resize_image(frame_out, shape)


# ------------------------------------------------------------------------ warping error


def to_unit_float(image: np.ndarray) -> np.ndarray:
    """uint8 (or float in [0, 1]) RGB as float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return image.astype(np.float32)


def masked_warp_error(current: np.ndarray, warped: np.ndarray, mask: np.ndarray) -> float:
    """Lai et al.'s E_pair: squared RGB distance averaged over the pixels where mask is 1."""
    squared = ((to_unit_float(current) - to_unit_float(warped)) ** 2).sum(axis=-1)
    weight = float(mask.sum())
    if weight == 0.0:
        # The whole frame is occluded (a cut): there is nothing to compare.
        return math.nan
    return float((squared * mask).sum() / weight)


class WarpingErrorMeter:
    """Per-pair warping errors of several output videos of one input, sharing the flow.

    Feed it frames in order with `add(input_frame, *output_frames)`; the flow (the slow
    part) is computed once per pair on the input frames and reused for every output.
    """

    def __init__(self, outputs: int, estimator: FlowEstimator | None = None) -> None:
        # The finest DIS settings: a flow that misses true motion raises the floor and so
        # flatters every ratio (vidstyle/temporal/flow.py, DIS_FINE). A filter that follows
        # DIS is flattered the other way, since its flow errs like this one: where the true
        # motion is known, this measure read its output 1.9-7.4x too steady (docs/temporal.md).
        self.estimator = estimator or FlowEstimator("dis", "fine")
        self.errors: list[list[float]] = [[] for _ in range(outputs)]
        self._previous: tuple[np.ndarray, Sequence[np.ndarray]] | None = None

    def add(self, frame_in: np.ndarray, *frames_out: np.ndarray) -> None:
        if len(frames_out) != len(self.errors):
            raise ValueError(f"expected {len(self.errors)} output frames, got {len(frames_out)}")
        if self._previous is not None:
            previous_in, previous_out = self._previous
            # The metric's hard mask (Lai et al.), not the filters' soft confidence.
            step = flow_with_confidence(previous_in, frame_in, self.estimator)
            # A scene cut leaves spurious "reliable" pixels (flat dark areas): on
            # megamind.mp4 the cut pair's floor was 0.07 against 0.0003 for the others, so
            # one cut would decide the whole clip's ratio. Cuts are not motion: skip them,
            # by the same test the filter resets on (the soft confidence's mean).
            is_cut = step.coverage < CUT_COVERAGE
            outputs = zip(self.errors, frames_out, previous_out, strict=True)
            for errors, current, previous in outputs:
                if is_cut:
                    errors.append(math.nan)
                    continue
                warped = warp_backward(to_unit_float(previous), step.flow)
                errors.append(masked_warp_error(current, warped, step.reliable))
        self._previous = (frame_in, frames_out)


def warping_errors(
    frames_out: Iterable[np.ndarray], frames_in: Iterable[np.ndarray]
) -> list[float]:
    """Warping error of each consecutive pair of `frames_out` (one value per pair).

    The flow and the occlusion mask come from `frames_in`, the original frames, which must
    have the same size as the outputs (RGB uint8, or float in [0, 1]). A pair whose frame is
    entirely occluded (a scene cut) gives NaN; `mean_error` skips those.
    """
    meter = WarpingErrorMeter(outputs=1)
    for frame_out, frame_in in zip(frames_out, frames_in, strict=True):
        if frame_out.shape[:2] != frame_in.shape[:2]:
            raise ValueError(
                f"output frame {frame_out.shape[:2]} and input frame {frame_in.shape[:2]} "
                "differ in size"
            )
        meter.add(frame_in, frame_out)
    return meter.errors[0]


def mean_error(values: Sequence[float]) -> float:
    """Mean over the finite values (NaN for cuts); NaN if there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


# ------------------------------------------------------------ style and content distance


def sample_indices(total: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over `total` frames, first and last included."""
    if total <= count:
        return list(range(total))
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


def sharpness(pixels: np.ndarray) -> float:
    """Mean absolute Laplacian (4-neighbour) of the luma, 0-255 scale, at the picture's own
    size: how much fine detail a stylized frame carries. A soft network's output reads a
    fraction of its photo's; brush strokes and crisp edges raise it."""
    rgb = pixels.astype(np.float32)
    luma = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    return float(np.abs(cv2.Laplacian(luma, cv2.CV_32F, ksize=1)).mean())


class PerceptualMeter:
    """VGG-19 style distance (Gram loss, Gatys et al. 2016) and content distance.

    Same network, layers and losses as the Gatys engine, so the numbers mean the same
    thing as its objective terms.
    """

    def __init__(self, style: str | None, device: torch.device | str, size: int) -> None:
        from vidstyle.config import GatysSettings
        from vidstyle.styles.lossnet import load_vgg19

        knobs = GatysSettings()
        self.device = device
        self.size = size
        self.style_layers = knobs.style_layers
        self.content_layer = knobs.content_layer
        self.vgg = load_vgg19(source=knobs.loss_net, device=str(device))
        self.style_target = None
        if style:
            from vidstyle.styles.targets import style_target

            # Style Grams at the Gatys engine's own style size, so that the distance is
            # the style term that engine optimises.
            self.style_target = style_target(style, self.vgg, self.style_layers)

    @torch.no_grad()
    def measure(self, original: np.ndarray, stylized: np.ndarray) -> tuple[float | None, float]:
        """(style distance or None, content distance) of one stylized frame."""
        from vidstyle.losses import content_distance, style_distance

        shape = fit_long_side(*original.shape[:2], self.size)
        content = to_tensor(resize_image(original, shape), self.device)
        image = to_tensor(resize_image(stylized, shape), self.device)
        style = None
        if self.style_target is not None:
            style = float(
                style_distance(image, self.style_target.grams, self.vgg, self.style_layers)
            )
        return style, float(content_distance(image, content, self.vgg, self.content_layer))


# ------------------------------------------------------------------------------ report


def evaluate_frames(
    frames_in: Sequence[np.ndarray],
    frames_out: Sequence[np.ndarray],
    *,
    style: str | None = None,
    device: torch.device | str = "cpu",
    perceptual: bool = True,
    vgg_frames: int = VGG_SAMPLE_FRAMES,
    vgg_size: int = VGG_SIZE,
    names: tuple[str, str] = ("", ""),
) -> EvalReport:
    """`evaluate_video` on frames already in memory (same sizes, paired in order).

    `perceptual=False` skips the VGG distances (warping error only).
    """
    if not frames_in or len(frames_in) != len(frames_out):
        raise ValueError("need the same, non-zero number of input and output frames")
    meter = WarpingErrorMeter(outputs=2)
    for frame_in, frame_out in zip(frames_in, frames_out, strict=True):
        meter.add(frame_in, frame_out, frame_in)
    stylized_errors, original_errors = meter.errors
    report = warping_report(stylized_errors, original_errors, names)
    report.size = tuple(frames_in[0].shape[:2])
    if perceptual:
        add_perceptual_scores(report, frames_in, frames_out, style, device, vgg_frames, vgg_size)
    return report


def warping_report(
    stylized_errors: list[float], original_errors: list[float], names: tuple[str, str]
) -> EvalReport:
    stylized_mean = mean_error(stylized_errors)
    original_mean = mean_error(original_errors)
    return EvalReport(
        original=names[0],
        stylized=names[1],
        frames=len(stylized_errors) + 1,
        warping_error=stylized_mean,
        warping_error_original=original_mean,
        warping_ratio=stylized_mean / original_mean if original_mean > 0 else math.inf,
        per_frame_warping=stylized_errors,
        per_frame_warping_original=original_errors,
    )


def add_perceptual_scores(
    report: EvalReport,
    frames_in: Sequence[np.ndarray],
    frames_out: Sequence[np.ndarray],
    style: str | None,
    device: torch.device | str,
    vgg_frames: int,
    vgg_size: int,
) -> None:
    """Fill the VGG distances of `report` from a sample of the frames."""
    meter = PerceptualMeter(style, device, vgg_size)
    report.style = style
    report.sampled_frames = sample_indices(len(frames_in), vgg_frames)
    for index in report.sampled_frames:
        style_score, content_score = meter.measure(frames_in[index], frames_out[index])
        report.per_frame_content.append(content_score)
        if style_score is not None:
            report.per_frame_style.append(style_score)
    report.content_distance = float(np.mean(report.per_frame_content))
    if report.per_frame_style:
        report.style_distance = float(np.mean(report.per_frame_style))


def evaluate_video(
    original: str | Path,
    stylized: str | Path,
    *,
    style: str | None = None,
    max_frames: int | None = None,
    size: int | None = None,
    device: torch.device | str = "cpu",
) -> EvalReport:
    """Score `stylized` against `original`: warping error, and VGG distances.

    Frames are paired in order (up to `max_frames`) and measured at the original video's
    own resolution (`report.size`); `size` shrinks the long side of the frames (pixels)
    before measuring, which makes the flow and VGG cheaper but hides fine flicker (on
    samples/cup.mp4 with scream the ratio at 320 px was a tenth of the one at 640x480,
    issue 14). `style` is a
    style image path or a catalogue name; without it no style distance is reported, but
    the content distance always is. Raises InputError for missing, non-video or empty
    inputs.
    """
    frames_in: list[np.ndarray] = []
    frames_out: list[np.ndarray] = []
    for frame_in, frame_out in paired_frames(original, stylized, max_frames, size):
        frames_in.append(frame_in)
        frames_out.append(frame_out)
    return evaluate_frames(
        frames_in,
        frames_out,
        style=style,
        device=device,
        vgg_size=size or VGG_SIZE,
        names=(str(original), str(stylized)),
    )


# -------------------------------------------------------------------------------- plot


def plot_warping_errors(report: EvalReport, path: str | Path) -> Path:
    """Draw the per-pair warping error of the stylized video and of the original (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtraError("eval --plot", "plot") from None

    path = Path(path)
    pairs = np.arange(1, len(report.per_frame_warping) + 1)
    figure, axes = plt.subplots(figsize=(8, 3.5), dpi=100)
    axes.plot(pairs, report.per_frame_warping, label=f"stylized (mean {report.warping_error:.4g})")
    axes.plot(
        pairs,
        report.per_frame_warping_original,
        label=f"original (mean {report.warping_error_original:.4g})",
        color="0.4",
        linestyle="--",
    )
    axes.set_xlabel("frame")
    axes.set_ylabel("warping error (RGB [0,1], squared)")
    axes.set_title(f"{Path(report.stylized).name}: ratio {report.warping_ratio:.2f}")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    try:
        figure.savefig(path, format="png")
    except OSError as exc:
        raise OutputError(path, f"cannot write the plot ({exc.strerror or exc})") from None
    finally:
        plt.close(figure)
    return path
