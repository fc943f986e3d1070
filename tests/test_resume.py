"""Resumable jobs: journaled segments, resume after a failure or a kill, invalidation.

Fast tests run in-process on a 160x120 copy of samples/cup.mp4 with a keyframe every 6
frames (so a second holds several segments) and a counting stand-in network. The slow
ones run the real CLI (`vidstyle apply`, `vidstyle watch`) in a subprocess with the
shipped scream network, SIGKILL it at random points and restart it until it finishes.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import numpy as np
import pytest
from helpers import InvertNetwork, audio_packets, video_timestamps

from vidstyle.api import Stylizer
from vidstyle.config import Settings
from vidstyle.errors import OutputError
from vidstyle.evaluate import read_frames, warping_errors
from vidstyle.media.probe import probe
from vidstyle.media.segments import plan_segments, scan_video, warmup_frames
from vidstyle.resume import (
    JOURNAL_NAME,
    input_identity,
    is_resumable,
    open_journal,
    resume_folder,
)

REPO = Path(__file__).resolve().parent.parent


def small_copy(src: Path, dst: Path, *, size=(160, 120), gop: int = 6) -> Path:
    """`src` at `size` with a keyframe every `gop` frames, its audio copied."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        options = {"preset": "ultrafast", "crf": "18", "g": str(gop),
                   "keyint_min": str(gop), "sc_threshold": "0", "bf": "0"}
        video = out.add_stream("libx264", rate=vin.average_rate, options=options)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.codec_context.time_base = vin.time_base
        audio = out.add_stream_from_template(ain) if ain is not None else None
        for packet in inp.demux([s for s in (vin, ain) if s is not None]):
            if packet.stream is vin:
                for frame in packet.decode():
                    small = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                    small.pts, small.time_base = frame.pts, frame.time_base
                    out.mux(video.encode(small))
            elif audio is not None and packet.size and packet.dts is not None:
                packet.stream = audio
                out.mux(packet)
        out.mux(video.encode(None))
    return dst


@pytest.fixture(scope="module")
def clip(samples, tmp_path_factory) -> Path:
    return small_copy(samples / "cup.mp4", tmp_path_factory.mktemp("clip") / "cup.mp4")


class CountingInvert(InvertNetwork):
    """1 - x, counting the frames it computes; raises `Boom` once `fail_at` is reached."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.frames = 0
        self.fail_at = fail_at

    def forward(self, x):
        if self.fail_at is not None and self.frames + x.shape[0] > self.fail_at:
            raise Boom("power cut")
        self.frames += x.shape[0]
        return super().forward(x)


class Boom(RuntimeError):
    pass


def settings(**changes) -> Settings:
    base = Settings(style="invert", device="cpu", batch=1, temporal="blend",
                    temporal_strength=0.5, resume=True, resume_segment=0.4, duration=1.2)
    return base.replace(**changes).replace(output={"preset": "ultrafast", "crf": 0})


def frames_of(path: Path) -> list[np.ndarray]:
    return list(read_frames(path))


def segment_work(clip: Path, job: Settings) -> dict[int, int]:
    """Frames each segment of a resumable run computes: its own, plus the warm-up frames
    before it (none before the first)."""
    index = scan_video(clip)
    plan = plan_segments(index, seconds=job.resume_segment, duration=job.duration)
    warm = warmup_frames(job) / float(probe(clip).frame_rate)
    return {s.index: s.frames + len(index.frames_in(max(s.start - warm, 0.0), s.start))
            for s in plan}


def uninterrupted_work(clip: Path, job: Settings) -> int:
    """Frames an uninterrupted resumable run computes."""
    return sum(segment_work(clip, job).values())


def test_long_inputs_and_resume_flag_are_resumable(clip):
    info = probe(clip)  # 8.7 s
    assert not is_resumable(Settings(), info)
    assert is_resumable(Settings(resume=True), info)
    assert is_resumable(Settings(resume_after=5.0), info)
    assert not is_resumable(Settings(resume_after=5.0, duration=4.0), info)
    assert not is_resumable(Settings(resume_after=5.0, start=4.0), info)


def test_resumable_output_has_every_frame_timestamp_and_audio_and_leaves_nothing(
    clip, tmp_path
):
    dst, plain = tmp_path / "out.mp4", tmp_path / "plain.mp4"
    job = settings(temporal="off")
    result = Stylizer(job, network=InvertNetwork()).video(clip, dst)
    Stylizer(job.replace(resume=False), network=InvertNetwork()).video(clip, plain)
    assert result.frames == len(scan_video(clip).frames_in(0.0, 1.2))
    assert video_timestamps(dst) == video_timestamps(plain)
    assert audio_packets(dst) == audio_packets(plain)  # muxed once, not per segment
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "plain.mp4"]
    for a, b in zip(frames_of(dst), frames_of(plain), strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_a_failed_job_resumes_after_its_last_finished_segment(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    job = settings()
    reference = tmp_path / "reference.mp4"
    uninterrupted = CountingInvert()
    Stylizer(job, network=uninterrupted).video(clip, reference)
    assert uninterrupted.frames == uninterrupted_work(clip, job)

    first = CountingInvert(fail_at=uninterrupted.frames // 2)
    with pytest.raises(Boom):
        Stylizer(job, network=first).video(clip, dst)
    assert not dst.exists()
    with open_journal(resume_folder(dst), dst) as journal:
        finished = journal.finished()
        plan = journal.plan()
    assert 0 < len(finished) < len(plan)

    second = CountingInvert()
    result = Stylizer(job, network=second).video(clip, dst)
    assert "resumed" in result.warnings[-1]
    warm = warmup_frames(job)
    longest = max(s.frames for s in plan) + warm
    assert first.frames + second.frames <= uninterrupted.frames + longest
    assert second.frames < uninterrupted.frames  # the finished segments were not redone
    assert video_timestamps(dst) == video_timestamps(reference)
    for a, b in zip(frames_of(dst), frames_of(reference), strict=True):
        assert np.array_equal(a, b)  # the same frames as if nothing had happened
    assert not resume_folder(dst).exists()


@pytest.mark.slow
def test_changed_settings_or_input_start_the_job_over(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    job = settings()
    with pytest.raises(Boom):
        Stylizer(job, network=CountingInvert(fail_at=25)).video(clip, dst)
    changed = job.replace(temporal_strength=0.4)
    counter = CountingInvert()
    Stylizer(changed, network=counter).video(clip, dst)
    assert counter.frames == uninterrupted_work(clip, changed)  # nothing kept

    src, other = tmp_path / "input.mp4", dst.with_name("other.mp4")
    src.write_bytes(clip.read_bytes())
    with pytest.raises(Boom):
        Stylizer(job, network=CountingInvert(fail_at=25)).video(src, other)
    before = input_identity(src)
    with open(src, "r+b") as file:  # same size, other bytes near the end
        file.seek(-100, os.SEEK_END)
        file.write(b"\x00" * 10)
    assert input_identity(src) != before
    counter = CountingInvert()
    Stylizer(job, network=counter).video(src, other)
    assert counter.frames == uninterrupted_work(src, job)


def test_a_second_process_on_the_same_output_is_refused(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    refused = pytest.raises(OutputError, match="another vidstyle process")
    with open_journal(resume_folder(dst), dst), refused:
        Stylizer(settings(), network=InvertNetwork()).video(clip, dst)


def test_an_output_published_by_a_run_that_died_cleaning_up_is_recognised(clip, tmp_path):
    dst = tmp_path / "out.mp4"
    job = settings()
    Stylizer(job, network=InvertNetwork()).video(clip, dst)
    # Put back what a run that died right after the rename would have left.
    folder = resume_folder(dst)
    plan = plan_segments(scan_video(clip), seconds=job.resume_segment, duration=job.duration)
    from vidstyle.files import file_signature
    from vidstyle.resume import job_key

    with open_journal(folder, dst) as journal:
        journal.start(job_key(clip, job), plan)
        for segment in plan:
            journal.finish_segment(segment.index, segment.frames)
        journal.set_joined(file_signature(dst))
    counter = CountingInvert()
    result = Stylizer(job, network=counter).video(clip, dst)
    assert counter.frames == 0 and result.frames == sum(s.frames for s in plan)
    assert not folder.exists()


# -- killed for real, again and again (slow) -----------------------------------------------

# The real CLI, with the style network wrapped to log every frame it computes (one byte a
# frame, appended: what a SIGKILL cannot lose).
COUNTING_CLI = textwrap.dedent("""
    import os, sys, torch
    import vidstyle.engines.factory as factory
    torch.set_num_threads(1)
    log = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    real = factory.load_network

    class Counting(torch.nn.Module):
        def __init__(self, network):
            super().__init__()
            self.network = network
            self.size_multiple = getattr(network, "size_multiple", 1)

        def forward(self, x):
            os.write(log, b"." * x.shape[0])
            return self.network(x)

    factory.load_network = lambda settings, device: Counting(real(settings, device))
    sys.argv = ["vidstyle", *sys.argv[2:]]
    from vidstyle.cli import main
    main()
""")
# Segment length (s), window (s): 4 segments of 0.5 s, 25 warm-up frames each.
KILL_SEGMENT, KILL_DURATION = 0.5, 2.0
KILLS = 3


def computed(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def run_counting(args: list[str], log: Path, kill_after: int | None = None,
                 timeout: float = 240) -> bool:
    """Run the CLI; SIGKILL it once `kill_after` more frames were computed. True when
    it was killed, False when it finished on its own (asserting it succeeded)."""
    start = computed(log)
    process = subprocess.Popen([sys.executable, "-c", COUNTING_CLI, str(log), *args],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if kill_after is not None and computed(log) - start >= kill_after:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(args)
        time.sleep(0.02)
    _, err = process.communicate()
    assert process.returncode == 0, err.decode()[-2000:]
    return False


def finished_segments(dst: Path) -> set[int]:
    with sqlite3.connect(resume_folder(dst) / JOURNAL_NAME) as db:
        return {row[0] for row in db.execute("SELECT idx FROM segment")}


def kill_and_restart(args: list[str], dst: Path, log: Path, rng: random.Random,
                     work: dict[int, int]) -> list[int]:
    """Kill the job KILLS times at random points, then let it finish; returns the
    segments each restart resumed at. `work`: frames each segment computes
    (`segment_work`); each kill comes before what is left of the job is done."""
    resumed_at = []
    for attempt in range(KILLS):
        done = finished_segments(dst) if attempt else set()
        left = sum(frames for index, frames in work.items() if index not in done)
        assert run_counting(args, log, kill_after=rng.randint(3, max(3, left - 1)))
        assert not dst.exists()
        resumed_at.append(len(finished_segments(dst)))
    assert not run_counting(args, log)
    return resumed_at


def check_against_uninterrupted(clip: Path, dst: Path, reference: Path, single: Path,
                                resumed_at: list[int], job: Settings) -> None:
    assert video_timestamps(dst) == video_timestamps(reference)
    assert len(video_timestamps(dst)) == len(video_timestamps(single))
    assert audio_packets(dst) == audio_packets(reference)
    inputs = frames_of(clip)[: len(video_timestamps(dst))]
    errors = {name: warping_errors(frames_of(path), inputs)
              for name, path in [("resumed", dst), ("reference", reference), ("single", single)]}
    index = scan_video(clip)
    plan = plan_segments(index, seconds=job.resume_segment, duration=job.duration)
    position = {pts: i for i, pts in enumerate(index.frame_pts)}
    for segment_index in set(resumed_at) - {0}:
        first = position[plan[segment_index].start_pts]
        pair = slice(first - 1, first + 2)  # the pair across the seam and the next two
        resumed = np.mean(errors["resumed"][pair])
        for other in ("reference", "single"):
            assert resumed == pytest.approx(np.mean(errors[other][pair]), rel=0.05), (
                segment_index, other)


@pytest.fixture(scope="module")
def kill_clip(samples, tmp_path_factory) -> Path:
    return small_copy(samples / "cup.mp4", tmp_path_factory.mktemp("kill") / "cup.mp4")


# Outputs are lossless (crf 0) so that the comparison with a single pass measures the
# temporal filter's warm-up, not the encoder restarting at each segment (docs/resume.md).
def cli_settings() -> Settings:
    return Settings(style="scream", max_size=64, resume=True, resume_segment=KILL_SEGMENT,
                    duration=KILL_DURATION).replace(output={"preset": "ultrafast", "crf": 0})


def segment_cost(clip: Path, job: Settings) -> int:
    plan = plan_segments(scan_video(clip), seconds=job.resume_segment, duration=job.duration)
    return max(s.frames for s in plan) + warmup_frames(job)


APPLY_FLAGS = ["--style", "scream", "--max-size", "64", "--preset", "ultrafast", "--crf", "0",
               "--duration", str(KILL_DURATION), "-q"]


@pytest.mark.slow
def test_apply_killed_at_random_points_finishes_as_if_never_interrupted(kill_clip, tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    job = cli_settings()
    cost = segment_cost(kill_clip, job)
    resume = ["--resume", "--resume-segment", str(KILL_SEGMENT)]
    reference, single = tmp_path / "reference.mp4", tmp_path / "single.mp4"
    reference_log, single_log, log = (tmp_path / n for n in ("ref.log", "single.log", "k.log"))
    run_counting(["apply", str(kill_clip), "-o", str(reference), *APPLY_FLAGS, *resume],
                 reference_log)
    run_counting(["apply", str(kill_clip), "-o", str(single), *APPLY_FLAGS, "--no-resume"],
                 single_log)
    dst = tmp_path / "out.mp4"
    args = ["apply", str(kill_clip), "-o", str(dst), *APPLY_FLAGS, *resume]
    resumed_at = kill_and_restart(args, dst, log, rng, segment_work(kill_clip, job))
    print(f"seed {seed}: resumed at segments {resumed_at}; frames computed "
          f"{computed(log)} against {computed(reference_log)} uninterrupted")
    assert computed(log) <= computed(reference_log) + KILLS * cost, seed
    check_against_uninterrupted(kill_clip, dst, reference, single, resumed_at, job)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mp4") == [
        "out.mp4", "reference.mp4", "single.mp4"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_watch_killed_at_random_points_resumes_the_file_it_picks_up_again(
    kill_clip, tmp_path
):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    job = cli_settings()
    cost = segment_cost(kill_clip, job)
    config = tmp_path / "job.toml"
    config.write_text(textwrap.dedent(f"""
        max_size = 64
        duration = {KILL_DURATION}
        resume = true
        resume_segment = {KILL_SEGMENT}
        [output]
        preset = "ultrafast"
        crf = 0
    """))
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    (inbox / "cup.mp4").symlink_to(kill_clip)
    reference, single = tmp_path / "reference.mp4", tmp_path / "single.mp4"
    reference_log, log = tmp_path / "ref.log", tmp_path / "k.log"
    run_counting(["apply", str(kill_clip), "-o", str(reference), *APPLY_FLAGS, "--resume",
                  "--resume-segment", str(KILL_SEGMENT)], reference_log)
    run_counting(["apply", str(kill_clip), "-o", str(single), *APPLY_FLAGS, "--no-resume"],
                 tmp_path / "single.log")
    args = ["watch", str(inbox), "--out", str(out), "--style", "scream", "--config",
            str(config), "--once", "--settle", "0", "-q"]
    dst = out / "cup.scream.mp4"
    resumed_at = kill_and_restart(args, dst, log, rng, segment_work(kill_clip, job))
    print(f"seed {seed}: resumed at segments {resumed_at}; frames computed "
          f"{computed(log)} against {computed(reference_log)} uninterrupted")
    assert computed(log) <= computed(reference_log) + KILLS * cost, seed
    check_against_uninterrupted(kill_clip, dst, reference, single, resumed_at, job)
    assert [p.name for p in out.iterdir() if p.name != ".vidstyle"] == ["cup.scream.mp4"]

