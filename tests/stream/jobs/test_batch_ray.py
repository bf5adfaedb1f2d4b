"""`p3m batch --engine ray` against a real Ray on loopback: one local Ray for the module (session fixture),
and a `ray start --head --block` cluster in a subprocess stopped by its PID (never `ray stop`, which ends
every Ray on the machine)."""
from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.batch_media import DAMAGED, GOOD, all_files, check_output, make_clips
from helpers.media import decoded_video
from helpers.ports import free_port

import stream
from model.errors import P3MError

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="Ray is not installed (pip install 'p3m-stream[ray]')")
ROOT = Path(__file__).resolve().parents[3]
# Loopback only (Ray 2.60 otherwise turns 127.0.0.1 into this machine's network address and listens on every
# interface), no usage reporting, the same token auth on every side.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of 2 CPUs for this process, on 127.0.0.1 (set up before `ray` is first imported); shut down
    after this module, not left beside the timed live tests that follow."""
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clips(tmp_path_factory.mktemp("clips"))


def test_ray_gives_the_local_engine_outputs_and_report(local_ray, clips: Path, tmp_path: Path) -> None:
    reports = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        out.mkdir()
        (out / "done.mp4").write_bytes((clips / "done.mp4").read_bytes())        # already done: skipped
        workers = {"workers": 2} if engine == "local" else {"cpus_per_video": 1}     # 2 at once, each way
        reports[engine] = stream.batch(clips, out, engine=engine, quiet=True, **workers)
    local, ray = reports["local"], reports["ray"]
    assert [(v.input, v.output.replace("/ray/", "/local/"), v.status, v.frames, v.device) for v in ray.videos] == \
           [(v.input, v.output, v.status, v.frames, v.device) for v in local.videos]
    assert all(v.model.startswith("bundled MediaPipe") for v in ray.done)
    assert [v.input for v in ray.failed] == [str(clips / DAMAGED)] and ray.exit_code == 1
    assert "cannot open" in ray.failed[0].error and ray.engine == "ray" and ray.workers == 2
    assert all_files(tmp_path / "ray") == set(GOOD)
    for name in GOOD[:-1]:
        check_output(tmp_path / "ray" / name)
        ours, theirs = (np.stack([f.to_ndarray(format="rgb24") for f in decoded_video(tmp_path / e / name)])
                        for e in ("ray", "local"))
        assert np.abs(ours.astype(int) - theirs).mean() < 0.5, name


def test_ray_stays_on_loopback(local_ray) -> None:
    ours = _descendants(os.getpid())
    listening = [address for pid, address in _listening() if pid in ours]
    assert listening, "no listening socket found for Ray's processes"
    assert all(address.startswith(("127.", "::ffff:127.")) for address in listening), listening


def test_gpus_asked_of_a_cluster_without_any_fail_at_once(local_ray, clips: Path, tmp_path: Path) -> None:
    with pytest.raises(P3MError, match="asks for GPUs, and the local Ray has none"):
        stream.batch(clips / "a.mp4", tmp_path / "out", engine="ray", gpus_per_video=0.5)


def test_a_cluster_started_with_ray_start(clips: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **RAY_ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    head = subprocess.Popen(["ray", "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
                             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run = subprocess.run([sys.executable, "-m", "stream.cli", "batch", str(clips / "day2"), "-o",
                              str(tmp_path / "out"), "--engine", "ray", "--ray-address", f"127.0.0.1:{port}",
                              "--cpus-per-video", "1", "-q"], env=env, capture_output=True, text=True, timeout=180)
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
    assert run.returncode == 0, run.stderr
    assert "over 2 ray workers" in run.stderr
    for name in ("c.mp4", "d.mp4"):
        check_output(tmp_path / "out" / name)


def _descendants(pid: int) -> set[int]:
    """`pid` and every process under it (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, changed = {pid}, True
    while changed:
        more = {child for child, parent in parents.items() if parent in found} - found
        found |= more
        changed = bool(more)
    return found


def _listening() -> list[tuple[int, str]]:
    """(pid, local address) of each listening TCP socket, from /proc/net/tcp{,6} and the processes' fds."""
    inodes = {}
    for name, family in (("tcp", 4), ("tcp6", 6)):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":                               # LISTEN
                inodes[fields[9]] = _address(fields[1].split(":")[0], family)
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    found.append((int(pid), inodes[target[8:-1]]))
        except OSError:
            continue
    return found


def _address(hex_ip: str, family: int) -> str:
    raw = bytes.fromhex(hex_ip)
    if family == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))       # four little-endian words
    return socket.inet_ntop(socket.AF_INET6, words)
