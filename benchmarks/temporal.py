"""How much flicker each temporal filter leaves, over the corpus, at full resolution.

Modes, all over the clips of `tools/build_corpus.py` (CORPUS/corpus.json):

    python -m benchmarks.temporal sweep CORPUS --styles scream,preset:19 --frames 24 \\
        --configs off,flow:0.85:size=320,flow:0.95 [--clips cup,vtest] [--tuning]
    python -m benchmarks.temporal table CORPUS --frames 48 [--out OUT_DIR]
    python -m benchmarks.temporal measures CORPUS --clips zoom,lowlight,sky \\
        --styles scream,preset:19 --frames 12

`sweep` (for choosing the filter) runs each style network once per clip, frame by frame,
then applies each filter configuration to that same network output as the fast engine
does, and scores every result at the clip's own size with `vidstyle.evaluate`: warping-
error ratio to the original (1 = no flicker added), content distance and texture change
(VGG-19 Gram distance of the filtered frame to the unfiltered network output of the same
frame, the ghost/smear detector), and the filter's milliseconds per frame next to the
network's. On the synthetic clips it adds the ratio along the true motion (and, on a
clip with moving objects, over them alone and the trail behind them:
`benchmarks.warping_truth.wake_ratio`, from frame 10 on), and on a static-camera clip
the ratio over its still background (`benchmarks.warping_truth`), which no flow
estimator's error can bias. `--tuning` keeps the held-out clips out.

`measures` (for judging the measures) runs `vidstyle eval`'s meter with each DIS preset
and the independent check on the per-frame and the default output of the synthetic clips,
beside the ratio along their true flow.

`crops CLIP --styles S --configs off,default --frame 7 --out F.jpg` (for the eye): the
centre of one frame of each filter's output, side by side, at the frame's own pixels.

`table` (for the record) makes the real outputs through the API (`vidstyle.Stylizer`, once
with `temporal="off"`, once with the default settings), then scores them from the encoded
files with `vidstyle.evaluate.evaluate_video` (what `vidstyle eval` runs) and with the
independent `benchmarks.warping_check` (Farneback flow, its own occlusion test), and on
the synthetic clips along the true flow (`benchmarks.warping_truth`). The
warping part of `vidstyle eval` is run on the decoded output directly (`evaluate_frames`
without the VGG distances, which this benchmark measures itself).

A configuration is MODE[:STRENGTH][:key=value...] with MODE off | blend | flow | gradient |
longterm | default (the shipped Settings) | oracle (the flow filter given the exact flow,
synthetic clips only: the bound a better flow could reach); keys: size (flow long side,
0 = full), preset (DIS ultrafast|fast|medium), alpha (photometric), cut (scene-cut
coverage), cutoff (gradient), frames (long-term memory), oneway=1 (backward flow only, no
round-trip test), boundary (the motion-boundary allowance's constant part; inf = no
boundary test), prior (follow the global motion where it explains the frames within this
margin), snap and valid (its gates), spread (photometric error pooled over this many
pixels), uncover (how much of the "just uncovered" mark survives a frame), warp (bilinear |
bicubic: how the previous output is resampled), structure (alpha of the coarse-picture test
between the warped past output and the current stylized frame; 0 = off), block (its
block size, px) and relative=1 (count only the gap beyond the network's own coarse change
from its warped previous frame).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from build_corpus import Clip, load_camera, load_corpus, true_motion_back  # noqa: E402

from benchmarks import temporal_lab as lab  # noqa: E402
from benchmarks.warping_check import frames_ratio  # noqa: E402
from benchmarks.warping_truth import still_ratio, truth_ratio, wake_ratio  # noqa: E402
from vidstyle.config import Settings  # noqa: E402
from vidstyle.engines.fast import FastEngine  # noqa: E402
from vidstyle.evaluate import (  # noqa: E402
    WarpingErrorMeter,
    mean_error,
    paired_frames,
    read_frames,
    sample_indices,
)
from vidstyle.temporal import blend  # noqa: E402
from vidstyle.temporal.flow import FlowConfidence  # noqa: E402

NAMED_STYLES = "scream,wave,udnie,starry_night,wreck,preset:7,preset:19"
VGG_FRAMES = 2
VGG_SIZE = 384
# "flow" with keys is the lab's filter (benchmarks/temporal_lab.py); without keys it
# computes exactly what vidstyle's FlowFilter does.
MODES = {
    "blend": blend.BlendFilter,
    "flow": lab.LabFlowFilter,
    "gradient": lab.GradientFilter,
    "longterm": lab.LongTermFilter,
}
KEYS = {"size": ("flow_max_size", int), "preset": ("flow_preset", str),
        "alpha": ("alpha", float), "cut": ("cut_coverage", float),
        "cutoff": ("cutoff", float), "frames": ("memory", int),
        "smooth": ("flow_smoothing", float), "boundary": ("boundary_absolute", float),
        "prior": ("global_prior", float), "snap": ("global_snap", float),
        "valid": ("global_valid", float), "spread": ("photometric_spread", int),
        "uncover": ("uncover_memory", float), "warp": ("warp_mode", str),
        "structure": ("structure_alpha", float), "block": ("structure_scale", int),
        "relative": ("structure_relative", lambda value: value in ("1", "true", "yes")),
        "oneway": ("flow_round_trip", lambda value: value not in ("1", "true", "yes"))}


def make_filter(config: str):
    """The filter a configuration string names (None for off)."""
    mode, *rest = config.split(":")
    if mode == "off":
        return None
    if mode == "default":
        settings = Settings()
        return blend.make_temporal_filter(settings.temporal_mode, settings.temporal_strength)
    strength = float(rest.pop(0)) if rest and "=" not in rest[0] else 0.85
    kwargs = {}
    for item in rest:
        key, _, value = item.partition("=")
        name, kind = KEYS[key]
        kwargs[name] = kind(value)
    if kwargs.get("flow_max_size") == 0:
        kwargs["flow_max_size"] = None  # size=0: flow at the frame's own size
    return MODES[mode](strength, **kwargs)


def network_outputs(style: str, frames: list[np.ndarray]) -> tuple[list[torch.Tensor], float]:
    """The style network's float output per frame (as the API's engine runs it), and its
    mean milliseconds per frame."""
    from vidstyle.device import resolve_precision
    from vidstyle.engines.factory import load_network

    settings = Settings(style=style, device="cpu")
    device = torch.device("cpu")
    engine = FastEngine(load_network(settings, device), device,
                        resolve_precision(settings.precision, device))
    outputs = []
    start = time.perf_counter()
    with torch.inference_mode():
        for frame in frames:
            x = torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float().div(255)
            outputs.append(engine.stylize_float(x)[0].clamp(0, 1).half())
    return outputs, (time.perf_counter() - start) * 1000 / len(frames)


def apply_filter(config: str, frames, styled, motion=None) -> tuple[list[np.ndarray], float, int]:
    """Filtered uint8 frames, the filter's mean ms per frame (flow included), cuts seen.

    `oracle[:STRENGTH]` is the flow filter fed the exact flow of a synthetic clip (`motion`,
    from `load_camera`) with its validity as the confidence: what the blend would leave if
    the flow were perfect."""
    oracle = config.split(":")[0] == "oracle"
    temporal = make_filter(config.replace("oracle", "flow", 1) if oracle else config)
    outputs = []
    start = time.perf_counter()
    with torch.inference_mode():
        for index, (content, image) in enumerate(zip(frames, styled, strict=True)):
            image = image.float()
            if temporal is None:
                out = image
            elif oracle and index > 0:
                out = temporal(content, image, true_estimate(motion, index, content.shape[:2]))
            else:
                out = temporal(content, image)
            outputs.append(out.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy())
    ms = (time.perf_counter() - start) * 1000 / len(frames)
    return outputs, ms, getattr(temporal, "cuts", 0)


def true_estimate(motion, t: int, shape: tuple[int, int]):
    """The exact flow from frame t back to t-1, trusted exactly where it is defined."""
    flow, valid = true_motion_back(motion, t, shape)
    return FlowConfidence(flow=flow, confidence=valid, reliable=valid)


class VggMeter:
    """Content distance to the original frame and texture change (Gram distance to the
    unfiltered output of the same frame) on a few sampled frames, at `size` (long side).

    `size=0` measures at the frame's own size, on the last frame alone: at 384 px the
    meter cannot see the filter eating a pixel-fine texture (round 14: preset 19 read
    0.005-0.04 here and 0.40-0.50 at 720p), and the loss builds up over the clip, so the
    last frame is where it shows; one VGG-19 pass at 720p takes about 11 s here."""

    def __init__(self, frames: list[np.ndarray], reference: list[np.ndarray],
                 size: int = VGG_SIZE) -> None:
        from vidstyle.config import GatysSettings
        from vidstyle.losses import style_grams
        from vidstyle.styles.lossnet import load_vgg19

        knobs = GatysSettings()
        self.style_layers, self.content_layer = knobs.style_layers, knobs.content_layer
        self.vgg = load_vgg19(source=knobs.loss_net, device="cpu")
        self.size = size
        self.indices = (sample_indices(len(frames), VGG_FRAMES) if size
                        else [len(frames) - 1])
        self.frames = frames
        with torch.no_grad():
            self.grams = [style_grams(self.tensor(reference[i]), self.vgg, self.style_layers)
                          for i in self.indices]

    def tensor(self, image: np.ndarray) -> torch.Tensor:
        from vidstyle.images import fit_long_side, resize_image, to_tensor

        return to_tensor(resize_image(image, fit_long_side(*image.shape[:2], self.size)), "cpu")

    @torch.no_grad()
    def __call__(self, outputs: list[np.ndarray]) -> tuple[float, float]:
        from vidstyle.losses import content_distance, style_distance

        content, texture = [], []
        for i, grams in zip(self.indices, self.grams, strict=True):
            image = self.tensor(outputs[i])
            content.append(float(content_distance(image, self.tensor(self.frames[i]), self.vgg,
                                                  self.content_layer)))
            texture.append(float(style_distance(image, grams, self.vgg, self.style_layers)))
        return float(np.mean(content)), float(np.mean(texture))


def sweep(args) -> None:
    clips = select_clips(args)
    configs = args.configs.split(",")
    print(f"sweep: {args.frames} frames per clip at full size; torch threads "
          f"{torch.get_num_threads()}")
    print("| clip | style | config | ratio | independent | true flow | on the moving objects | "
          "trail | content | texture | filter ms | net ms | cuts |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for clip in clips:
        frames = list(read_frames(Path(args.corpus) / clip.file, args.frames))
        camera = load_camera(Path(args.corpus) / clip.file)  # synthetic clips only
        for style in args.styles.split(","):
            styled, net_ms = network_outputs(style, frames)
            per_frame = [s.float().mul(255).round().byte().permute(1, 2, 0).numpy()
                         for s in styled]
            # The oracle needs a synthetic clip's exact flow.
            clip_configs = [c for c in configs
                            if camera is not None or not c.startswith("oracle")]
            results = [apply_filter(config, frames, styled, camera)
                       for config in clip_configs]
            meter = WarpingErrorMeter(outputs=len(clip_configs) + 1)
            for index, frame in enumerate(frames):
                meter.add(frame, *(r[0][index] for r in results), frame)
            floor = mean_error(meter.errors[-1])
            vgg = VggMeter(frames, results[0][0], args.vgg_size) if args.vgg else None
            for config, (outputs, ms, cuts), errors in zip(clip_configs, results,
                                                           meter.errors, strict=False):
                ratio = mean_error(errors) / floor
                independent = frames_ratio(frames, outputs)["ratio"]
                truth = true_ratio(clip, frames, outputs, camera)
                on_objects = (truth_ratio(frames, outputs, camera, objects_only=True)["ratio"]
                              if isinstance(camera, dict) else math.nan)
                trail = wake_ratio(outputs, per_frame, camera)
                content, texture = vgg(outputs) if vgg else (math.nan, math.nan)
                row = {"clip": clip.name, "held_out": clip.held_out, "style": style,
                       "config": config, "ratio": ratio, "independent": independent,
                       "truth": truth, "objects": on_objects, "trail": trail,
                       "content": content,
                       "texture": texture, "filter_ms": ms, "net_ms": net_ms, "cuts": cuts}
                rows.append(row)
                print(f"| {clip.name}{' (held out)' if clip.held_out else ''} | {style} | "
                      f"{config} | {ratio:.2f} | {independent:.2f} | {truth:.2f} | "
                      f"{on_objects:.2f} | {trail:.2f} | {content:.3f} | "
                      f"{texture:.3f} | {ms:.0f} | "
                      f"{net_ms:.0f} | {cuts} |", flush=True)
    summarise(rows, configs)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print("command: python -m benchmarks.temporal " + " ".join(sys.argv[1:]))


def true_ratio(clip: Clip, frames, outputs, camera) -> float:
    """The warping ratio with no flow estimated: along the camera path of a synthetic clip,
    over the still background of a static-camera one; NaN for other clips."""
    if camera is not None:
        return truth_ratio(frames, outputs, camera)["ratio"]
    if getattr(clip, "static_camera", False):
        return still_ratio(frames, outputs)["ratio"]
    return math.nan


def summarise(rows: list[dict], configs: list[str]) -> None:
    """Per config: worst and median ratio, worst content increase and texture change, and
    the median ratio along the true flow (synthetic clips)."""
    print("\n| config | worst ratio | median ratio | clips over 1.5 | worst content vs off "
          "| worst texture | median true-flow ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    off = {(r["clip"], r["style"]): r for r in rows if r["config"] == configs[0]}
    for config in configs:
        mine = [r for r in rows if r["config"] == config]
        if not mine:
            continue  # an oracle over clips with no exact flow
        ratios = [r["ratio"] for r in mine]
        content = [r["content"] / off[(r["clip"], r["style"])]["content"] for r in mine]
        truths = [r["truth"] for r in mine if math.isfinite(r["truth"])]
        truth = f"{np.median(truths):.2f}" if truths else "-"
        print(f"| {config} | {max(ratios):.2f} | {np.median(ratios):.2f} | "
              f"{sum(x > 1.5 for x in ratios)}/{len(ratios)} | {max(content):.3f} | "
              f"{max(r['texture'] for r in mine):.3f} | {truth} |")


def select_clips(args) -> list[Clip]:
    clips = load_corpus(Path(args.corpus))
    if args.clips:
        wanted = args.clips.split(",")
        clips = [c for c in clips if c.name in wanted]
    if getattr(args, "tuning", False):
        clips = [c for c in clips if not c.held_out]
    return clips


class RecordingFilter:
    """Wraps the API's temporal filter: keeps each unfiltered network frame (the per-frame
    output, for free) and times the filter's two parts (flow thread, blend) in CPU time of
    the thread that runs them (wall time on a shared machine counts other tenants too)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.unfiltered: list[np.ndarray] = []
        self.flow_seconds = 0.0
        self.blend_seconds = 0.0

    def reset(self) -> None:
        self.inner.reset()

    def estimate(self, previous, content):
        start = time.thread_time()
        try:
            return self.inner.estimate(previous, content)
        finally:
            self.flow_seconds += time.thread_time() - start

    def __call__(self, content, styled, *estimate):
        self.unfiltered.append(
            styled.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
        )
        start = time.thread_time()
        try:
            return self.inner(content, styled, *estimate)
        finally:
            self.blend_seconds += time.thread_time() - start


def stylize_recording(src: Path, dst: Path, style: str, frames: int, fps: float):
    """The API's default output for the first `frames` frames, and the recorder."""
    import vidstyle
    from vidstyle.temporal import blend as blend_module

    real = blend_module.make_temporal_filter
    recorders: list[RecordingFilter] = []

    def recording(*args):
        recorders.append(RecordingFilter(real(*args)))
        return recorders[-1]

    settings = Settings(style=style, device="cpu", duration=(frames - 0.5) / fps)
    settings.output.overwrite = True
    blend_module.make_temporal_filter = recording
    cpu_started = time.process_time()
    try:
        result = vidstyle.Stylizer(settings).video(src, dst)
    finally:
        blend_module.make_temporal_filter = real
    result.cpu_seconds = time.process_time() - cpu_started  # all threads: decode, net, ...
    return result, recorders[0]


def table(args) -> None:
    """Real outputs through the API, scored from the files by both implementations."""
    from benchmarks.warping_check import warping_ratio
    from vidstyle.evaluate import evaluate_frames

    clips = select_clips(args)
    out_dir = Path(args.out or tempfile.mkdtemp(prefix="vidstyle-temporal-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"table: first {args.frames} frames of each clip at its own size, default settings "
          f"({Settings().temporal} {Settings().temporal_strength}), outputs in {out_dir}")
    print("| clip | size | style | per-frame ratio | default ratio (eval) | independent | "
          "true flow | content per-frame | content default | texture change | flow CPU ms | "
          "blend CPU ms | job CPU ms | filter share |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    # Style by style over all clips, so that a partial run still covers every clip.
    for style in args.styles.split(","):
        for clip in clips:
            src = Path(args.corpus) / clip.file
            frames = list(read_frames(src, args.frames))
            dst = out_dir / f"{clip.name}.{style.replace(':', '')}.mp4"
            result, recorder = stylize_recording(src, dst, style, len(frames), clip.fps)
            count = min(len(frames), len(recorder.unfiltered), result.frames)
            per_frame = evaluate_frames(frames[:count], recorder.unfiltered[:count],
                                        perceptual=False)
            # What `vidstyle eval` computes (its warping part), from the encoded file.
            decoded = [out for _, out in paired_frames(src, dst, count)]
            default = evaluate_frames(frames[:count], decoded, perceptual=False)
            independent = warping_ratio(str(src), str(dst), count)
            truth = true_ratio(clip, frames[:count], decoded, load_camera(src))
            vgg = VggMeter(frames[:count], recorder.unfiltered[:count])
            content_off, _ = vgg(recorder.unfiltered[:count])
            content_default, texture = vgg(decoded)
            row = {"clip": clip.name, "held_out": clip.held_out, "style": style,
                   "size": f"{clip.width}x{clip.height}", "frames": count,
                   "per_frame": per_frame.warping_ratio, "default": default.warping_ratio,
                   "independent": independent["ratio"], "truth": truth,
                   "content_off": content_off,
                   "content_default": content_default, "texture": texture,
                   "flow_ms": 1000 * recorder.flow_seconds / count,
                   "blend_ms": 1000 * recorder.blend_seconds / count,
                   "total_ms": 1000 * result.seconds / result.frames,
                   "cpu_ms": 1000 * result.cpu_seconds / result.frames}
            row["filter_share"] = (row["flow_ms"] + row["blend_ms"]) / row["cpu_ms"]
            rows.append(row)
            print(f"| {clip.name}{' (held out)' if clip.held_out else ''} | {row['size']} | "
                  f"{style} | {row['per_frame']:.2f} | {row['default']:.2f} | "
                  f"{row['independent']:.2f} | {truth:.2f} | {content_off:.3f} | "
                  f"{content_default:.3f} | "
                  f"{texture:.3f} | {row['flow_ms']:.0f} | {row['blend_ms']:.0f} | "
                  f"{row['cpu_ms']:.0f} | {row['filter_share']:.1%} |", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=1))
    print("command: python -m benchmarks.temporal " + " ".join(sys.argv[1:]))


def measures(args) -> None:
    """Each warping measure on the same outputs (per-frame and the shipped default), next
    to the ratio along the true flow: which measure can be trusted on filtered output. Run
    it on the synthetic clips (only they have a true flow)."""
    from vidstyle.temporal.flow import FlowEstimator

    presets = ("fast", "medium", "fine", "robust")
    print("| clip | style | output | true flow | " + " | ".join(f"DIS {p}" for p in presets)
          + " | independent |")
    print("|---|---|---|---:|" + "---:|" * (len(presets) + 1))
    for clip in select_clips(args):
        camera = load_camera(Path(args.corpus) / clip.file)
        if camera is None:
            continue
        frames = list(read_frames(Path(args.corpus) / clip.file, args.frames))
        for style in args.styles.split(","):
            styled, _ = network_outputs(style, frames)
            for config in ("off", "default"):
                outputs = apply_filter(config, frames, styled)[0]
                cells = [truth_ratio(frames, outputs, camera)["ratio"]]
                for preset in presets:
                    meter = WarpingErrorMeter(outputs=2, estimator=FlowEstimator("dis", preset))
                    for frame, output in zip(frames, outputs, strict=True):
                        meter.add(frame, output, frame)
                    cells.append(mean_error(meter.errors[0]) / mean_error(meter.errors[1]))
                cells.append(frames_ratio(frames, outputs)["ratio"])
                print(f"| {clip.name} | {style} | {config} | "
                      + " | ".join(f"{c:.2f}" for c in cells) + " |", flush=True)
    print("command: python -m benchmarks.temporal " + " ".join(sys.argv[1:]))


def rescore(args) -> None:
    """Warping-error ratio of the outputs a `table` run left in OUT_DIR, by vidstyle's
    measure and the independent one, from the files (no network run)."""
    from benchmarks.warping_check import warping_ratio
    from vidstyle.evaluate import evaluate_frames

    clips = {c.name: c for c in select_clips(args)}
    print("| clip | style | eval ratio | independent | pairs |")
    print("|---|---|---:|---:|---:|")
    for path in sorted(Path(args.out).glob("*.mp4")):
        name, style = path.name.split(".")[:2]
        if name not in clips:
            continue
        src = Path(args.corpus) / clips[name].file
        pairs = list(paired_frames(src, path, args.frames))
        report = evaluate_frames([a for a, _ in pairs], [b for _, b in pairs], perceptual=False)
        independent = warping_ratio(str(src), str(path), len(pairs))
        held = " (held out)" if clips[name].held_out else ""
        print(f"| {name}{held} | {style} | {report.warping_ratio:.2f} | "
              f"{independent['ratio']:.2f} | {independent['pairs']} |", flush=True)
    print("command: python -m benchmarks.temporal " + " ".join(sys.argv[1:]))


def strip(args) -> None:
    """A contact strip: N consecutive original frames over the same stylized frames (JPEG),
    to look for trails behind moving objects by eye."""
    import cv2

    rows = []
    for path in (args.corpus, args.stylized):
        frames = list(read_frames(path, args.start + args.frames))[args.start :]
        rows.append(np.hstack(frames))
    height = rows[0].shape[0]
    rows[1] = cv2.resize(rows[1], (rows[0].shape[1], height))
    picture = np.vstack(rows)
    scale = min(1.0, 2400 / picture.shape[1])
    picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(args.out, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}: frames {args.start}-{args.start + args.frames - 1}")


def crops(args) -> None:
    """Side by side, the centre of frame `--frame` of the original and of each filter's
    output (network run once, as `sweep` runs it), one row per style, enlarged 2x without
    smoothing (JPEG): to see smear and trails the filter leaves at the frame's own size."""
    import cv2

    frames = list(read_frames(args.clip, args.frame + 1))
    height, width = frames[-1].shape[:2]
    window = (slice(max(0, height // 2 - 96), height // 2 + 96),
              slice(max(0, width // 2 - 128), width // 2 + 128))

    def tile(image: np.ndarray, label: str) -> np.ndarray:
        big = cv2.resize(np.ascontiguousarray(image[window]), None, fx=2, fy=2,
                         interpolation=cv2.INTER_NEAREST)
        cv2.putText(big, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        return big

    rows = []
    for style in args.styles.split(","):
        styled, _ = network_outputs(style, frames)
        tiles = [tile(frames[-1], f"original, frame {args.frame}")]
        for config in args.configs.split(","):
            tiles.append(tile(apply_filter(config, frames, styled)[0][-1], f"{style} {config}"))
        rows.append(np.hstack(tiles))
    picture = np.vstack(rows)
    cv2.imwrite(args.out, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("sweep", "table", "rescore", "measures"):
        sub = commands.add_parser(name)
        sub.add_argument("corpus", help="folder with corpus.json (tools/build_corpus.py)")
        sub.add_argument("--styles", default=NAMED_STYLES)
        sub.add_argument("--clips", help="comma-separated clip names (default: all)")
        sub.add_argument("--frames", type=int, default=24, help="first N frames per clip")
        sub.add_argument("--tuning", action="store_true", help="leave the held-out clips out")
        sub.add_argument("--out", help="table: where the API's outputs go")
        sub.add_argument("--configs", default="off,default")
        sub.add_argument("--no-vgg", dest="vgg", action="store_false")
        sub.add_argument("--vgg-size", type=int, default=VGG_SIZE,
                         help="long side the content and texture columns are measured at; "
                              "0: the frame's own size, last frame only")
        sub.add_argument("--json", help="also write the rows as JSON here")
        sub.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    contact = commands.add_parser("strip", help="contact strip of consecutive frames")
    contact.add_argument("corpus", help="the original clip")
    contact.add_argument("stylized")
    contact.add_argument("--out", required=True)
    contact.add_argument("--start", type=int, default=0)
    contact.add_argument("--frames", type=int, default=4)
    contact.add_argument("--threads", type=int)
    compare = commands.add_parser("crops", help="frame centres of several filters, side by side")
    compare.add_argument("clip")
    compare.add_argument("--styles", default="scream")
    compare.add_argument("--configs", default="off,default")
    compare.add_argument("--frame", type=int, default=7, help="which frame (from 0)")
    compare.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "strip":
        strip(args)
        return
    if args.command == "crops":
        crops(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    {"sweep": sweep, "table": table, "rescore": rescore, "measures": measures}[args.command](args)


if __name__ == "__main__":
    main()
