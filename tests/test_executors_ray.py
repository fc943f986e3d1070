"""Executors: the local default, and Ray (by file, by segment, faults, two nodes).

Ray tests start a local cluster of 2 CPUs (about 10 s) and are marked `ray` and `slow`;
they are skipped when Ray is not installed. The rest run everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import conftest
import pytest
from helpers import InvertNetwork, audio_packets, decoded_frames, video_timestamps

from vidstyle.api import Stylizer
from vidstyle.config import Settings
from vidstyle.errors import MissingExtraError, SettingsError, StyleError
from vidstyle.executors import Job, RunHooks, get_executor, run_apply
from vidstyle.executors.progress import ClusterProgress
from vidstyle.media.segments import scan_video
from vidstyle.progress import ProgressEvent

# Keep every Ray process of these tests on the loopback: Ray otherwise advertises the
# machine's network address and listens on all interfaces. (Read when ray is imported.)
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

try:
    import ray
except ImportError:  # the optional extra is not installed
    ray = None

needs_ray = pytest.mark.skipif(ray is None, reason="ray is not installed (vidstyle[ray])")


def ray_test(test):
    """Marks a test that starts Ray: `ray`, `slow`, skipped without Ray."""
    for mark in (pytest.mark.ray, pytest.mark.slow, needs_ray):
        test = mark(test)
    return test


def on_cluster(test):
    """A `ray_test` that runs on the module's in-process cluster."""
    return pytest.mark.usefixtures("cluster")(ray_test(test))

REPO = Path(__file__).resolve().parent.parent


def fast_settings(**changes) -> Settings:
    return Settings(device="cpu", max_size=64, **changes).replace(
        output={"preset": "ultrafast"}
    )


class KillOnceNetwork(InvertNetwork):
    """Kills its worker process (as SIGKILL or an OOM kill would) the first time any
    process runs it; the marker file remembers that it happened."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def forward(self, x):
        if not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)
        return super().forward(x)


class FailingNetwork(InvertNetwork):
    """Raises `error` on its first `times` calls, one log line each (one per attempt: an
    error ends the attempt)."""

    def __init__(self, log: str, error: Exception, times: int = 10**9) -> None:
        super().__init__()
        self.log, self.error, self.times = log, error, times

    def forward(self, x):
        if attempts(Path(self.log)) < self.times:
            with open(self.log, "a") as file:
                file.write("failed\n")
            raise self.error
        return super().forward(x)


def attempts(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith("."))


# -- no Ray needed -------------------------------------------------------------------------


def test_cluster_progress_sums_parts_of_a_file():
    events: list[ProgressEvent] = []
    now = [0.0]
    progress = ClusterProgress(events.append, clock=lambda: now[0])
    clip = Path("clip.mp4")
    progress.expect(clip, 100)
    progress.update((clip, 0), ProgressEvent(clip, 10, 50, 1.0))
    now[0] = 2.0
    progress.update((clip, 1), ProgressEvent(clip, 30, 50, 1.0))
    progress.update((clip, 0), ProgressEvent(clip, 20, 50, 1.5))
    assert [e.kind for e in events] == ["start", "frames", "frames"]
    assert events[-1].frames_done == 50 and events[-1].frames_total == 100
    assert events[-1].fps == pytest.approx(25.0)  # 50 frames in 2 s across the cluster
    progress.finish(clip, 100)
    progress.update((clip, 1), ProgressEvent(clip, 40, 50, 3.0))  # late, ignored
    assert events[-1].kind == "done" and events[-1].frames_done == 100


def test_unknown_executor_and_misplaced_options_are_settings_errors(samples):
    with pytest.raises(SettingsError, match="unknown executor"):
        get_executor("dask")
    with pytest.raises(SettingsError, match="--ray-address"):
        get_executor("local", "auto")
    with pytest.raises(SettingsError, match="need --executor ray"):
        run_apply([samples / "cup.mp4"], fast_settings(), segments=2)


def test_ray_missing_is_a_missing_extra_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    monkeypatch.delitem(sys.modules, "vidstyle.executors.ray", raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'vidstyle\[ray\]'"):
        get_executor("ray")


def test_local_executor_runs_the_batch_past_a_bad_file(samples, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    done = []
    results, failures = run_apply(
        [samples / "cup.mp4", bad], fast_settings(duration=0.5), out_dir=tmp_path,
        network=InvertNetwork(), on_file_done=lambda src, r, e: done.append(src),
    )
    assert [r.frames for r in results] == [len(scan_video(samples / "cup.mp4").frames_in(0, 0.5))]
    assert failures[0][0] == bad and "broken.mp4" in failures[0][1]
    assert "\n" not in failures[0][1]
    assert done == [samples / "cup.mp4", bad]


# -- a two-node cluster on the loopback (runs before the in-process cluster starts) ----------

LOOPBACK = "127.0.0.1"
# Loopback clusters: no token to hand around between the nodes of one machine; and the
# single-node loopback switch set above would refuse a second node.
RAY_ENV = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="1")
# Ray replaces a loopback node address by the machine's network address (so that other
# machines could join) and then listens on every interface. These tests must stay on the
# loopback: every Ray process they start runs with Ray's two address helpers pinned.
PIN_LOOPBACK = textwrap.dedent(f"""
    import ray._private.services as services
    services.resolve_ip_for_localhost = lambda host: host
    services.get_node_ip_address = lambda address=None: {LOOPBACK!r}
""")
RAY_CLI = PIN_LOOPBACK + textwrap.dedent("""
    import sys
    from ray.scripts.scripts import main
    sys.argv[0] = "ray"
    main()
""")
# Where `ray start --head` records its address for `ray.init()` to find; `ray stop`
# deletes it, and so must we, stopping our nodes by process group instead.
CURRENT_CLUSTER_FILE = Path("/tmp/ray/ray_current_cluster")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def start_node(args: list[str], log: Path) -> subprocess.Popen:
    """`ray start ... --block` in its own process group, so that it and everything it
    spawns can be stopped by that group id (and nothing else on the machine)."""
    return subprocess.Popen(
        [sys.executable, "-c", RAY_CLI, "start", f"--node-ip-address={LOOPBACK}",
         "--block", *args],
        start_new_session=True, stdout=log.open("w"), stderr=subprocess.STDOUT, env=RAY_ENV,
    )


def stop_node(node: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.wait(15)  # the head may drain for 30 s: not needed here
    with contextlib.suppress(ProcessLookupError):  # whatever of the group is left
        os.killpg(node.pid, signal.SIGKILL)
    node.wait(15)


def run_pinned(code: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """Python `code` in a fresh process whose Ray stays on the loopback."""
    return subprocess.run([sys.executable, "-c", PIN_LOOPBACK + code, *args], env=RAY_ENV,
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


def alive_nodes(address: str) -> int:
    code = (
        f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    done = run_pinned(code, timeout=60)
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


def wait_for_nodes(address: str, count: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while alive_nodes(address) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} Ray node(s) did not come up at {address}")
        time.sleep(1.0)


TWO_NODE_DRIVER = textwrap.dedent("""
    import json, sys, ray
    from pathlib import Path
    from vidstyle.config import Settings
    from vidstyle.executors import get_executor, plan_jobs

    address, out, *sources = sys.argv[1:]
    ray.init(address=address, logging_level="ERROR")
    settings = Settings(style="scream", device="cpu", max_size=64, duration=1.0).replace(
        output={"preset": "ultrafast"})
    executor = get_executor("ray", address)
    batch = executor.run(plan_jobs(sources, settings, out_dir=out), settings)
    print(json.dumps({
        "frames": [r.frames for r in batch.results],
        "failures": batch.failures,
        "nodes": [o.node_id for o in executor.last_outcomes],
        "cluster_nodes": [n["NodeID"] for n in ray.nodes() if n["Alive"]],
        "addresses": [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]],
    }))
""")


@ray_test
def test_two_nodes_on_the_loopback_share_a_batch(samples, tmp_path):
    """A head and a worker node (`ray start`, one CPU each, 127.0.0.1 only) drain a
    batch of four clips together: tasks run on both node ids."""
    if ray.is_initialized():
        pytest.skip("an in-process Ray cluster is already running")
    address = f"{LOOPBACK}:{free_port()}"
    head = start_node(["--head", f"--port={address.split(':')[1]}", "--num-cpus=1",
                       "--include-dashboard=false"], tmp_path / "head.log")
    nodes = [head]
    try:
        wait_for_nodes(address, 1)
        nodes.append(start_node([f"--address={address}", "--num-cpus=1"],
                                tmp_path / "worker.log"))
        wait_for_nodes(address, 2)
        sources = [samples / n for n in ("cup.mp4", "box.mp4", "bigbuckbunny.mp4")]
        copies = []
        for i, src in enumerate([*sources, sources[0]]):  # four jobs for two nodes
            copy = tmp_path / f"in{i}{src.suffix}"
            copy.symlink_to(src)
            copies.append(str(copy))
        out = tmp_path / "out"
        out.mkdir()
        driver = run_pinned(TWO_NODE_DRIVER, address, str(out), *copies, timeout=400)
        assert driver.returncode == 0, driver.stderr[-3000:]
        report = json.loads(driver.stdout.strip().splitlines()[-1])
    finally:
        for node in reversed(nodes):
            stop_node(node)
        with contextlib.suppress(OSError):
            if CURRENT_CLUSTER_FILE.read_text().strip() == address:
                CURRENT_CLUSTER_FILE.unlink()
    assert report["failures"] == []
    assert len(report["frames"]) == 4 and all(f > 0 for f in report["frames"])
    assert set(report["nodes"]) == set(report["cluster_nodes"])
    assert len(set(report["nodes"])) == 2
    assert set(report["addresses"]) == {LOOPBACK}
    print("tasks per node:", {n: report["nodes"].count(n) for n in set(report["nodes"])})


# -- a node lost mid-job: three nodes, each in its own network namespace ---------------------

# Each node as small as Ray allows: one CPU and the minimum object store (75 MB plus a
# margin); only settings, plans and results travel through it, never frames.
NODE_OBJECT_STORE = str(80 * 1024 * 1024)

NODE_LOSS_DRIVER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    import torch
    import ray
    from vidstyle.config import Settings
    from vidstyle.executors import get_executor, plan_jobs

    class MarkedInvert(torch.nn.Module):
        # 1 - x; every process that runs it leaves a marker file with its pid, so that the
        # test can tell when the node it is about to kill is busy.
        size_multiple = 4

        def __init__(self, markers):
            super().__init__()
            self.markers = markers

        def forward(self, x):
            node = ray.get_runtime_context().get_node_id()
            Path(self.markers, f"{node}-{os.getpid()}").touch()
            time.sleep(0.05)  # keep a segment in flight long enough to lose it
            return 1.0 - x

    address, out, markers, *sources = sys.argv[1:]
    ray.init(address=address, logging_level="ERROR")
    settings = Settings(style="invert", device="cpu", temporal="off").replace(
        output={"preset": "ultrafast", "crf": 0})
    executor = get_executor("ray", address, network=MarkedInvert(markers), segments=3)
    batch = executor.run(plan_jobs(sources, settings, out_dir=out), settings)
    print(json.dumps({
        "outputs": [str(r.dst) for r in batch.results],
        "failures": batch.failures,
        "nodes": [o.node_id for o in executor.last_outcomes],
        "alive": [n["NodeID"] for n in ray.nodes() if n["Alive"]],
        "addresses": sorted({n["NodeManagerAddress"] for n in ray.nodes()}),
    }))
""")


def pin_to(address: str) -> str:
    """PIN_LOOPBACK for another node address: Ray must advertise exactly this one."""
    return PIN_LOOPBACK.replace(repr(LOOPBACK), repr(address))


class Namespaces:
    """Network namespaces joined by veth pairs on one bridge: the host side holds the
    head (and the driver), each namespace one worker node. Root only; `available` is
    False (with the reason) where the kernel or the sandbox refuses."""

    def __init__(self, count: int) -> None:
        tag = os.getpid() % 100000
        self.subnet = f"10.231.{os.getpid() % 250}"
        self.bridge = f"vsbr{tag}"
        self.names = [f"vsns{tag}n{i}" for i in range(count)]
        self.host_ends = [f"vsh{tag}n{i}" for i in range(count)]
        self.head_address = f"{self.subnet}.1"
        self.addresses = [f"{self.subnet}.{i + 2}" for i in range(count)]
        self.reason = ""
        self.available = self._create()

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)

    def _create(self) -> bool:
        try:
            self._ip("link", "add", self.bridge, "type", "bridge")
            self._ip("addr", "add", f"{self.head_address}/24", "dev", self.bridge)
            self._ip("link", "set", self.bridge, "up")
            for name, host_end, address in zip(self.names, self.host_ends, self.addresses,
                                               strict=True):
                self._ip("netns", "add", name)
                self._ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0",
                         "netns", name)
                self._ip("link", "set", host_end, "master", self.bridge)
                self._ip("link", "set", host_end, "up")
                self._ip("-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
                self._ip("-n", name, "link", "set", "eth0", "up")
                self._ip("-n", name, "link", "set", "lo", "up")
        except (OSError, subprocess.SubprocessError) as exc:
            stderr = getattr(exc, "stderr", b"") or b""
            self.reason = (stderr.decode().strip() or str(exc)).splitlines()[0]
            self.remove()
            return False
        return True

    def kill_all(self, index: int) -> None:
        """SIGKILL every process in namespace `index`: a machine switched off."""
        pids = subprocess.run(["ip", "netns", "pids", self.names[index]], capture_output=True,
                              text=True, timeout=20).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)

    def command(self, index: int) -> list[str]:
        return ["ip", "netns", "exec", self.names[index]]

    def remove(self) -> None:
        for name, host_end in zip(self.names, self.host_ends, strict=True):
            subprocess.run(["ip", "link", "del", host_end], capture_output=True, timeout=20)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=20)


def start_node_at(address: str, args: list[str], log: Path,
                  prefix: list[str] = ()) -> subprocess.Popen:
    """`ray start --block` advertising `address`, in its own process group (and, with a
    `prefix` of ``ip netns exec NS``, its own network namespace)."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", pin_to(address) + RAY_CLI.split(PIN_LOOPBACK)[1],
         "start", f"--node-ip-address={address}", "--block",
         f"--object-store-memory={NODE_OBJECT_STORE}", "--num-cpus=1", *args],
        start_new_session=True, stdout=log.open("w"), stderr=subprocess.STDOUT, env=RAY_ENV,
        cwd=REPO,
    )


def node_with_resource(address: str, head_ip: str, resource: str) -> str:
    code = pin_to(head_ip) + (
        f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
        f"print([n['NodeID'] for n in ray.nodes() if {resource!r} in n['Resources']][0])"
    )
    done = subprocess.run([sys.executable, "-c", code], env=RAY_ENV, capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def alive_at(address: str, pin: str) -> int:
    code = pin + (
        f"import ray; ray.init(address={address!r}, logging_level='ERROR'); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=RAY_ENV, capture_output=True,
                          text=True, timeout=60, cwd=REPO)
    return int(done.stdout.strip() or 0) if done.returncode == 0 else 0


def join_node(address: str, head_ip: str, ip: str, count: int, log: Path,
              prefix: list[str], extra: list[str]) -> subprocess.Popen:
    """Start a worker node and wait until the cluster has `count` nodes. Ray gives a
    node 30 s to register, which a loaded 2-core machine can miss: then start it again."""
    for _ in range(3):
        node = start_node_at(ip, [f"--address={address}", *extra], log, prefix)
        deadline = time.monotonic() + 120
        while node.poll() is None and time.monotonic() < deadline:
            if alive_at(address, pin_to(head_ip)) >= count:
                return node
            time.sleep(1.0)
        stop_node(node)
    raise AssertionError(f"a worker node did not join: {log.read_text()[-2000:]}")


def lossless_single_process(src: Path, dst: Path) -> Path:
    settings = Settings(style="invert", device="cpu", temporal="off").replace(
        output={"preset": "ultrafast", "crf": 0})
    return Stylizer(settings, network=InvertNetwork()).video(src, dst).dst


@ray_test
def test_a_node_lost_mid_job_costs_only_its_segments(samples, tmp_path):
    """A head and two worker nodes (one CPU each, own network namespaces on a bridge
    where this machine allows it, else all on the loopback) stylize two clips by segment;
    once the second worker node is busy, it is killed whole (raylet, workers: a machine
    lost). Ray retries its segments on the others; every output appears exactly once,
    frame-exact against a single process, and nothing partial is left."""
    if ray.is_initialized():
        pytest.skip("an in-process Ray cluster is already running")
    spaces = Namespaces(2) if os.geteuid() == 0 else None
    isolated = spaces is not None and spaces.available
    if not isolated:
        print("no network namespaces here:", spaces.reason if spaces else "not root")
    head_ip = spaces.head_address if isolated else LOOPBACK
    worker_ips = spaces.addresses if isolated else [LOOPBACK, LOOPBACK]
    port = free_port()
    address = f"{head_ip}:{port}"
    out, markers = tmp_path / "out", tmp_path / "markers"
    out.mkdir()
    markers.mkdir()
    sources = [samples / "cup.mp4", samples / "bigbuckbunny.mp4"]
    nodes = []
    try:
        nodes.append(start_node_at(head_ip, ["--head", f"--port={port}",
                                             "--include-dashboard=false"],
                                   tmp_path / "head.log"))
        deadline = time.monotonic() + 90
        while alive_at(address, pin_to(head_ip)) < 1:
            assert time.monotonic() < deadline, (tmp_path / "head.log").read_text()[-2000:]
        for i, ip in enumerate(worker_ips):
            prefix = spaces.command(i) if isolated else []
            # The victim is told apart by a resource no task asks for.
            tag = ['--resources={"victim": 1}'] if i == 1 else []
            nodes.append(join_node(address, head_ip, ip, i + 2, tmp_path / f"worker{i}.log",
                                   prefix, tag))
        victim_id = node_with_resource(address, head_ip, "victim")
        driver = subprocess.Popen(
            [sys.executable, "-c", pin_to(head_ip) + NODE_LOSS_DRIVER, address, str(out),
             str(markers), *map(str, sources)],
            env=RAY_ENV, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        victim = nodes[2]
        deadline = time.monotonic() + 300
        while not any(m.name.startswith(victim_id) for m in markers.iterdir()):
            assert driver.poll() is None, driver.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the second worker node never got a task"
            time.sleep(0.05)
        # The machine is gone: its raylet and everything else it ran (in its namespace).
        os.killpg(victim.pid, signal.SIGKILL)
        if isolated:
            spaces.kill_all(1)
        victim.wait(15)
        stdout, stderr = driver.communicate(timeout=400)
        assert driver.returncode == 0, stderr[-3000:]
        report = json.loads(stdout.strip().splitlines()[-1])
    finally:
        for node in reversed(nodes):
            stop_node(node)
        if spaces is not None and spaces.available:
            spaces.remove()
        with contextlib.suppress(OSError):
            if CURRENT_CLUSTER_FILE.read_text().strip() == address:
                CURRENT_CLUSTER_FILE.unlink()
    print("outcomes by node:", {n: report["nodes"].count(n) for n in set(report["nodes"])},
          "victim:", victim_id)
    assert report["failures"] == []
    # The victim started a segment (its marker) and finished none: what it was running
    # was done again on the survivors.
    assert victim_id not in report["nodes"]
    assert len(set(report["nodes"])) == 2
    if isolated:
        assert set(report["addresses"]) == {head_ip, *worker_ips}
    outputs = sorted(Path(p) for p in report["outputs"])
    assert sorted(out.iterdir()) == outputs  # each once; no temp, no segment file left
    for src, dst in zip(sources, sorted(outputs, key=lambda p: p.name.startswith("big")),
                        strict=True):
        reference = lossless_single_process(src, tmp_path / f"single-{src.name}")
        assert video_timestamps(dst) == video_timestamps(reference)
        assert audio_packets(dst) == audio_packets(reference)
        for a, b in zip(decoded_frames(dst), decoded_frames(reference),
                        strict=True):
            assert (a.to_ndarray(format="rgb24") == b.to_ndarray(format="rgb24")).all()
    print(f"namespaces: {isolated}")


# -- an in-process local cluster -------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    # The test networks live in test modules the workers cannot import: ship them whole.
    ray.cloudpickle.register_pickle_by_value(conftest)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.shutdown()


@on_cluster
def test_batch_by_file_finishes_every_clip_once_past_a_bad_one(samples, tmp_path):
    bad = tmp_path / "text.mp4"
    bad.write_text("this is not a video\n")
    sources = [samples / "cup.mp4", samples / "box.mp4", bad, samples / "bigbuckbunny.mp4"]
    events: list[ProgressEvent] = []
    finished: list[Path] = []
    results, failures = run_apply(
        sources, fast_settings(duration=1.0), executor="ray", out_dir=tmp_path,
        network=InvertNetwork(), on_progress=events.append,
        on_file_done=lambda src, result, error: finished.append(src),
    )
    assert sorted(r.src for r in results) == sorted(s for s in sources if s != bad)
    for result in results:
        expected = len(scan_video(result.src).frames_in(0.0, 1.0))
        assert result.frames == expected == len(video_timestamps(result.dst))
    assert failures == [(bad, f"{bad}: not a video file, or the file is corrupt")]
    assert sorted(finished) == sorted(sources)  # each file reported exactly once
    done = [e for e in events if e.kind == "done"]
    assert sorted(e.path for e in done) == sorted(r.src for r in results)
    assert not temp_files(tmp_path)


@on_cluster
def test_by_segment_output_has_the_inputs_frames_timestamps_and_audio(samples, tmp_path):
    src = samples / "cup.mp4"
    events: list[ProgressEvent] = []
    executor = get_executor("ray", network=InvertNetwork(), segments=3)
    batch = executor.run([Job(src, tmp_path / "cup.out.mp4")], fast_settings(temporal="blend"),
                         RunHooks(on_progress=events.append))
    assert batch.failures == []
    (result,) = batch.results
    assert result.frames == 217
    assert video_timestamps(result.dst) == video_timestamps(src)
    assert audio_packets(result.dst) == audio_packets(src)
    assert len(executor.last_outcomes) == 3 + 1  # three segments and one join
    assert events[-1].kind == "done" and events[-1].frames_done == 217
    frames_seen = [e.frames_done for e in events if e.kind == "frames"]
    assert frames_seen == sorted(frames_seen)  # summed across workers, never backwards
    assert not temp_files(tmp_path)


@pytest.mark.parametrize("segments", [None, 2], ids=["by-file", "by-segment"])
@on_cluster
def test_killed_worker_is_retried_and_the_output_appears_once(samples, tmp_path, segments):
    marker = tmp_path / "killed.pid"
    src = samples / "cup.mp4"
    settings = fast_settings(start=1.5, duration=2.0)
    results, failures = run_apply(
        [src], settings, executor="ray", out_dir=tmp_path, segments=segments,
        network=KillOnceNetwork(str(marker)),
    )
    assert marker.exists()  # a worker really died mid-task
    assert failures == []
    (result,) = results
    expected = scan_video(src).frames_in(1.5, 3.5)
    assert result.frames == len(expected) == len(video_timestamps(result.dst))
    outputs = [p for p in tmp_path.iterdir() if p.suffix == ".mp4"]
    assert outputs == [result.dst]
    assert not temp_files(tmp_path)  # the dead attempt's temp file was swept


@on_cluster
def test_transient_errors_are_retried_but_input_errors_are_not(samples, tmp_path):
    src = samples / "cup.mp4"
    flaky_log, style_log = tmp_path / "flaky.log", tmp_path / "style.log"
    flaky = FailingNetwork(str(flaky_log), OSError("NFS server not responding"), times=1)
    results, failures = run_apply([src], fast_settings(duration=0.5), executor="ray",
                                  out_dir=tmp_path, network=flaky)
    assert failures == [] and len(results) == 1  # so the attempt after the failure ran
    assert attempts(flaky_log) == 1

    broken = FailingNetwork(str(style_log), StyleError("style 'x': broken weights"))
    results, failures = run_apply([src], fast_settings(duration=0.5, style="other"),
                                  executor="ray", out_dir=tmp_path, network=broken)
    assert results == [] and failures == [(src, "style 'x': broken weights")]
    assert attempts(style_log) == 1  # a verdict, not retried


def local_process(calls: list, name: str):
    """A watch `process` callable that stylizes in this process and records its calls."""

    def process(src, dst, settings, *, on_progress=None, cancel=None):
        calls.append((name, Path(src).name))
        return Stylizer(settings, network=InvertNetwork()).video(
            src, dst, on_progress=on_progress, cancel=cancel
        )

    return process


def ray_process(calls: list, name: str):
    executor = get_executor("ray", network=InvertNetwork())

    def process(src, dst, settings, *, on_progress=None, cancel=None):
        calls.append((name, Path(src).name))
        return executor.process(src, dst, settings, on_progress=on_progress, cancel=cancel)

    return process


@on_cluster
def test_a_cluster_and_a_local_watcher_share_one_ledger_without_doing_a_file_twice(
    samples, tmp_path
):
    """Two watchers on one inbox and one ledger at the same time, one of them running its
    jobs on the Ray cluster: the ledger's claims give every file to exactly one."""
    from vidstyle.watch import watch_folder
    from vidstyle.watch.ledger import Ledger

    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    for i, name in enumerate(["cup.mp4", "box.mp4", "bigbuckbunny.mp4", "cup.mp4"]):
        (inbox / f"clip{i}.mp4").symlink_to(samples / name)
    calls: list[tuple[str, str]] = []
    settings = fast_settings(duration=0.8)
    stop = threading.Event()

    def watcher(process) -> None:
        watch_folder(inbox, out, ["invert"], settings, once=True, settle=0.0, stop=stop,
                     process=process)

    threads = [
        threading.Thread(target=watcher, args=(ray_process(calls, "cluster"),)),
        threading.Thread(target=watcher, args=(local_process(calls, "local"),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    stop.set()
    print("jobs per watcher:", {w: [n for who, n in calls if who == w] for w, _ in calls})
    files = sorted(name for _, name in calls)
    assert files == [f"clip{i}.mp4" for i in range(4)]  # each once, by one of the two
    with Ledger.in_folder(out / ".vidstyle") as ledger:
        assert ledger.counts()["done"] == 4
    assert sorted(p.name for p in out.glob("*.mp4")) == [
        f"clip{i}.invert.mp4" for i in range(4)
    ]
