"""Soak test for `vidstyle watch`: clips dropped at random while the watcher is killed.

    python tools/soak_watch.py                      # 50 clips, 2 kills, copy process
    python tools/soak_watch.py --process invert     # real stylize_video pipeline
    python tools/soak_watch.py --clips 200 --kills 5 --keep /tmp/soak

It writes N short distinct clips with PyAV (8 frames each, cut from the sample videos at
different offsets), drops them into an inbox at random intervals (some written slowly
through an open handle), runs a watcher subprocess, SIGKILLs it at random moments while a
job is running and restarts it, then checks that every clip was done exactly once:

* ledger: exactly one job per clip, all done;
* outputs: one per clip, each a readable video (copy process: byte-identical to its input);
* duplicates: outputs finished more than once, from the workers' own log (0 expected);
* lost: clips without a done job or an output (0 expected);
* no temporary outputs left behind.

Processes: `copy` copies the input to the output through vidstyle's own atomic temp file
(`vidstyle.files.atomic_output`), slowly (`--work` seconds per job) so that kills land
mid-job; `invert` runs the real `stylize_video` (decode, network, encode, mux) with a
1 - x network; `style` runs `stylize_video` with `--style` (needs the style catalogue).
Exit status 0 when every check passes.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
sys.path.insert(0, str(ROOT))

from vidstyle.files import temp_files  # noqa: E402
from vidstyle.watch import folder_status  # noqa: E402
from vidstyle.watch.ledger import Ledger, parse_owner  # noqa: E402
from vidstyle.watch.scan import probe_error  # noqa: E402

CLIP_FRAMES = 8  # 0.32 s at 25 fps
CLIP_SIZE = (128, 96)

WORKER = r"""
import json, os, sys, time
from pathlib import Path
import vidstyle
from vidstyle.files import atomic_output
from vidstyle.errors import Cancelled
from vidstyle.watch import watch_folder

args = json.loads(sys.argv[1])

def log_finished(dst):
    with open(args["log"], "a") as log:
        log.write(f"{os.getpid()} {dst}\n")

def copy(src, dst, settings, *, on_progress=None, cancel=None):
    data = Path(src).read_bytes()
    step = max(len(data) // 10, 1)
    with atomic_output(Path(dst), overwrite=True) as tmp, open(tmp, "wb") as out:
        for start in range(0, len(data), step):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            out.write(data[start:start + step])
            out.flush()
            time.sleep(args["work"] / 10)
    log_finished(dst)

def stylize(src, dst, settings, **kw):
    extra = {}
    if args["process"] == "invert":
        import torch
        class Invert(torch.nn.Module):
            size_multiple = 4
            def forward(self, x):
                return 1.0 - x
        extra["network"] = Invert()
    result = vidstyle.stylize_video(src, dst, settings, **extra, **kw)
    log_finished(dst)
    return result

settings = vidstyle.Settings(style=args["style"], max_size=64, batch=2, precision="fp32"
                            ).replace(output={"preset": "ultrafast"})
watch_folder(args["inbox"], args["out"], [args["style"]], settings, settle=args["settle"],
             poll=args["poll"], process=copy if args["process"] == "copy" else stylize)
"""


def write_clips(folder: Path, count: int, seed: int) -> list[Path]:
    """`count` distinct 8-frame H.264 clips cut from the samples at different offsets."""
    rng = random.Random(seed)
    sources = []
    for name in ("cup.mp4", "box.mp4", "bigbuckbunny.mp4"):
        with av.open(str(SAMPLES / name)) as container:
            frames = [f.reformat(*CLIP_SIZE, format="yuv420p")
                      for _, f in zip(range(120), container.decode(video=0), strict=False)]
        sources.append(frames)
    clips = []
    for n in range(count):
        frames = sources[n % len(sources)]
        start = rng.randrange(len(frames) - CLIP_FRAMES)
        path = folder / f"clip{n:04d}.mp4"
        with av.open(str(path), "w") as container:
            container.metadata["comment"] = f"soak clip {n}"  # distinct even at equal frames
            stream = container.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
            stream.width, stream.height, stream.pix_fmt = *CLIP_SIZE, "yuv420p"
            for i, frame in enumerate(frames[start : start + CLIP_FRAMES]):
                frame = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"),
                                                   format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 25)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        clips.append(path)
    return clips


def drop_clips(clips: list[Path], inbox: Path, max_gap: float, seed: int,
               done: threading.Event) -> None:
    """Copy clips in at random intervals; every third one slowly, through an open handle."""
    rng = random.Random(seed + 1)
    for n, clip in enumerate(clips):
        time.sleep(rng.uniform(0, max_gap))
        sub = inbox / f"batch{n % 4}"
        sub.mkdir(exist_ok=True)
        if n % 3 == 0:
            data = clip.read_bytes()
            with open(sub / clip.name, "wb") as out:
                for start in range(0, len(data), len(data) // 3 + 1):
                    out.write(data[start : start + len(data) // 3 + 1])
                    out.flush()
                    time.sleep(0.2)
        else:
            shutil.copy(clip, sub / clip.name)
    done.set()


class Watcher:
    def __init__(self, args: argparse.Namespace, inbox: Path, out: Path, log: Path) -> None:
        self.config = json.dumps({
            "inbox": str(inbox), "out": str(out), "log": str(log), "style": args.style,
            "process": args.process, "work": args.work, "settle": args.settle,
            "poll": args.poll,
        })
        self.out = out
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, self.config], cwd=ROOT)
        self.starts += 1

    def running_job_writing(self) -> bool:
        """The current watcher (not a killed one whose job awaits recovery) is writing."""
        ledger = self.out / ".vidstyle" / "ledger.sqlite"
        if not ledger.exists():
            return False
        with Ledger(ledger) as db:
            return any(
                parse_owner(j.owner)[1] == self.proc.pid and temp_files(self.out, j.dst)
                for j in db.jobs(["running"])
            )

    def kill_mid_job(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running_job_writing():
                time.sleep(random.uniform(0, 0.1))
                self.proc.kill()
                self.proc.wait()
                return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def check(clips: list[Path], inbox: Path, out: Path, log: Path, process: str) -> dict:
    jobs = folder_status(out)
    by_name: dict[str, list] = {}
    for job in jobs:
        by_name.setdefault(Path(job.input).name, []).append(job)
    finished: dict[str, int] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            dst = line.split(" ", 1)[1]
            finished[dst] = finished.get(dst, 0) + 1
    lost, bad_outputs = [], []
    for clip in clips:
        clip_jobs = by_name.get(clip.name, [])
        if len(clip_jobs) != 1 or clip_jobs[0].state != "done" or not clip_jobs[0].dst.exists():
            lost.append(clip.name)
            continue
        dst = clip_jobs[0].dst
        ok = (dst.read_bytes() == clip.read_bytes()) if process == "copy" else (
            probe_error(dst) is None)
        if not ok:
            bad_outputs.append(dst.name)
    outputs = [p for p in out.rglob("*.mp4") if not p.name.startswith(".")]
    return {
        "clips": len(clips),
        "jobs": len(jobs),
        "done": sum(j.state == "done" for j in jobs),
        "outputs": len(outputs),
        "duplicates": sum(n - 1 for n in finished.values() if n > 1),
        "lost": len(lost),
        "bad_outputs": len(bad_outputs),
        "recovered_as_done": sum(bool(j.note and "recovered" in j.note) for j in jobs),
        "reruns_after_kill": sum(j.attempts - 1 for j in jobs),
        "temp_files_left": len(temp_files(out)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=50)
    parser.add_argument("--kills", type=int, default=2, help="kill -9 + restart this often")
    parser.add_argument("--gap", type=float, default=0.3, help="max seconds between drops")
    parser.add_argument("--process", choices=("copy", "invert", "style"), default="copy")
    parser.add_argument("--style", default="scream")
    parser.add_argument("--work", type=float, default=0.3, help="copy: seconds per job")
    parser.add_argument("--settle", type=float, default=0.3)
    parser.add_argument("--poll", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: temp)")
    args = parser.parse_args()
    random.seed(args.seed)

    work = args.keep or Path(tempfile.mkdtemp(prefix="vidstyle-soak-"))
    staging, inbox, out, log = work / "staging", work / "inbox", work / "out", work / "log"
    for folder in (staging, inbox):
        folder.mkdir(parents=True, exist_ok=True)
    clips = write_clips(staging, args.clips, args.seed)

    started = time.monotonic()
    watcher = Watcher(args, inbox, out, log)
    watcher.start()
    dropped = threading.Event()
    dropper = threading.Thread(target=drop_clips,
                               args=(clips, inbox, args.gap, args.seed, dropped))
    dropper.start()
    kills = 0
    kill_times = sorted(random.uniform(0.1, 0.9) for _ in range(args.kills))
    expected_span = args.clips * (args.gap / 2 + args.work)
    for fraction in kill_times:
        time.sleep(max(0.0, started + fraction * expected_span - time.monotonic()))
        if watcher.kill_mid_job(timeout=expected_span):
            kills += 1
            watcher.start()
    dropper.join()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            counts = [j.state for j in folder_status(out)]
        except Exception:
            counts = []
        if counts.count("done") + counts.count("failed") >= args.clips and \
                "running" not in counts and "queued" not in counts:
            break
        time.sleep(0.5)
    watcher.stop()
    wall = time.monotonic() - started

    figures = {"process": args.process, **check(clips, inbox, out, log, args.process),
               "kills": kills, "watcher_starts": watcher.starts, "wall_s": round(wall, 1)}
    print(json.dumps(figures, indent=2))
    print(f"command: python tools/soak_watch.py --clips {args.clips} --kills {args.kills} "
          f"--process {args.process} --seed {args.seed}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    ok = (figures["duplicates"] == 0 and figures["lost"] == 0 and figures["bad_outputs"] == 0
          and figures["temp_files_left"] == 0 and figures["done"] == args.clips)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
