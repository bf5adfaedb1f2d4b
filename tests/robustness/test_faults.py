"""Fault injection: signals mid-run, an exception inside a stage, a sink that fails or stalls."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import robust_media as rm

from stream.cli.main import main
from stream.frames import Frame
from stream.pipeline.runner import Pipeline, StageError
from stream.protocols import Sink

REPO = Path(__file__).resolve().parents[2]
SIGNAL_EXIT = 130          # the CLI's exit code after SIGINT or SIGTERM (the output kept, finalised)


# --- signals, in a real process ---------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_run_keeps_a_playable_file_with_the_frames_done(inputs, tmp_path, sig):
    out, marker = tmp_path / "out.mp4", tmp_path / "at_frame_10"
    env = {**os.environ, "PYTHONPATH": str(REPO), "P3M_TEST_MARKER": str(marker), "P3M_TEST_MARKER_AT": "10"}
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/robustness/robust_cli.py"), "cutout",
                             str(inputs / "long.mp4"), "-o", str(out), "-m", "slow", "--infer-size", "64",
                             "--preset", "ultrafast", "-q"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The slow double (50 ms a frame) touches the marker at frame 10 of 60; by then the sink has written
        # into its hidden partial file: wait until that file holds data, so frames were surely written.
        _wait_for(lambda: marker.exists() and any(p.stat().st_size > 0 for p in tmp_path.glob(".out.*.part.mp4")),
                  proc, timeout=60)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == SIGNAL_EXIT, stderr
    assert "Traceback" not in stderr and stdout == ""
    assert "interrupted: finishing the frames written so far" in stderr
    kept = int(re.search(r"interrupted: kept the (\d+) frames done", stderr).group(1))
    assert 0 < kept < 60
    frames = rm.decode(out)                                   # finalised: it decodes to the end
    assert len(frames) == kept
    assert [round(float(f.pts * f.time_base) * rm.FPS) for f in frames] == list(range(kept))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["at_frame_10", "out.mp4"]     # no partial file left


def test_sigterm_while_the_model_loads_stops_cleanly_and_writes_nothing(inputs, tmp_path):
    # Bad output paths fail before the model loads, but the output itself opens after it (NVENC's probe runs
    # meanwhile): SIGTERM while it loads must stop the job cleanly, and leave nothing behind.
    out, marker = tmp_path / "out.mp4", tmp_path / "loading"
    env = {**os.environ, "PYTHONPATH": str(REPO), "P3M_TEST_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/robustness/robust_cli.py"), "cutout",
                             str(inputs / "ok.mp4"), "-o", str(out), "-m", "loading", "-q"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker.exists, proc, timeout=60)
        # nothing written while it loads, only the lock that keeps a second job off this output
        assert [p.name for p in tmp_path.glob(".out.*")] == [".out.mp4.p3m-lock"]
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == SIGNAL_EXIT
    assert stderr.splitlines()[-1] == "error: interrupted" and "Traceback" not in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loading"]


def _wait_for(condition, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the job ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError("the job wrote no frame in time")
        time.sleep(0.02)


# --- an exception inside a stage --------------------------------------------------------------------------

def endless() -> Iterator[Frame]:
    """A source that never ends: only a stop can end the run."""
    image = rm.image(0)
    i = 0
    while True:
        yield Frame(index=i, image=image, pts=i)
        i += 1


class Explodes:
    """A stage that raises on its 5th frame (by count: live queues may drop any given index)."""

    name = "exploding-stage"

    def __init__(self) -> None:
        self.closed = False
        self.calls = 0

    def process(self, frame: Frame) -> Frame:
        self.calls += 1
        if self.calls == 5:
            raise ValueError("bad frame")
        frame.output = frame.image
        return frame

    def close(self) -> None:
        self.closed = True


class Passthrough:
    def process(self, frame: Frame) -> Frame:
        frame.output = frame.image
        return frame


class RecordingSink(Sink):
    """Keeps the indices it was given; `delay` seconds per write simulates a slow disk."""

    path = "memory"

    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.delay, self.fail_at = delay, fail_at
        self.indices: list[int] = []
        self.state = "open"

    def write(self, frame: Frame) -> None:
        if frame.index == self.fail_at:
            raise OSError(28, "No space left on device")
        time.sleep(self.delay)
        self.indices.append(frame.index)
        self.frames_written += 1

    def close(self, *, interrupted: bool = False) -> None:
        self.state = "interrupted" if interrupted else "closed"

    def abort(self) -> None:
        self.state = "aborted"


@pytest.mark.parametrize("policy", ["offline", "live"])
def test_stage_exception_stops_every_thread_quickly_and_names_the_stage(policy, no_pipeline_threads):
    stage, sink = Explodes(), RecordingSink()
    pipeline = Pipeline(endless(), [Passthrough(), stage, Passthrough()], sink, policy=policy)
    start = time.perf_counter()
    with pytest.raises(StageError) as info:
        pipeline.run()
    assert time.perf_counter() - start < 2.0
    assert info.value.stage == "exploding-stage"
    assert str(info.value) == "exploding-stage failed: ValueError: bad frame"
    assert isinstance(info.value.__cause__, ValueError)
    assert stage.closed and sink.state == "aborted"
    assert not [t for t in threading.enumerate() if t.name.startswith("p3m-")]


def test_sink_failure_is_reported_as_the_sink(no_pipeline_threads):
    sink = RecordingSink(fail_at=3)
    with pytest.raises(StageError, match=r"^sink failed: OSError: \[Errno 28\] No space left on device"):
        Pipeline(endless(), [Passthrough()], sink).run()
    assert sink.state == "aborted" and sink.indices == [0, 1, 2]


def test_stage_exception_through_the_cli_is_one_line_and_leaves_nothing(inputs, tmp_path, no_pipeline_threads):
    result = CliRunner().invoke(main, ["cutout", str(inputs / "long.mp4"), "-o", str(tmp_path / "out.mp4"),
                                       "-m", "failing", "--infer-size", "64", "-q"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: internal error: matting failed: RuntimeError: boom",
        "  hint: please report it with the command line; P3M_DEBUG=1 shows the traceback"]
    assert list(tmp_path.iterdir()) == []


# --- a stalled sink: offline waits (bounded), live drops (counted) ----------------------------------------

class CountingSource:
    """`n` frames, `interval` seconds apart; records the most Frame objects alive at once (memory in use)."""

    def __init__(self, n: int, interval: float = 0.0) -> None:
        self.n, self.interval = n, interval
        self.frame_count = n
        self.alive = self.most_alive = 0
        self._lock = threading.Lock()

    def _freed(self) -> None:
        with self._lock:
            self.alive -= 1

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            time.sleep(self.interval)
            frame = Frame(index=i, image=np.zeros((rm.H, rm.W, 3), np.uint8), pts=i, captured_at=time.perf_counter())
            weakref.finalize(frame, self._freed)
            with self._lock:
                self.alive += 1
                self.most_alive = max(self.most_alive, self.alive)
            yield frame
            del frame


def test_offline_waits_for_a_stalled_sink_with_bounded_memory(no_pipeline_threads):
    capacity, n = 2, 30
    sink = RecordingSink(delay=0.02)                         # a slow disk: 20 ms a frame
    source = CountingSource(n)
    pipeline = Pipeline(source, [Passthrough(), Passthrough()], sink, policy="offline", capacity=capacity)
    stats = pipeline.run()
    assert sink.indices == list(range(n)) and sink.state == "closed"        # nothing lost, in order
    assert stats.written == stats.frames_in == n and stats.dropped == 0
    assert all(0 < peak <= capacity for peak in stats.queue_peaks.values()), stats.queue_peaks
    # Frames alive at once: the queues' capacity plus one or two in the hands of each of the 4 threads.
    assert source.most_alive <= len(pipeline.queues) * capacity + 2 * 4, source.most_alive


def test_live_drops_stale_frames_for_a_stalled_sink_and_counts_them(no_pipeline_threads):
    n = 60
    sink = RecordingSink(delay=0.05)                         # 20 fps sink behind a 500 fps source
    source = CountingSource(n, interval=0.002)
    pipeline = Pipeline(source, [Passthrough()], sink, policy="live")
    stats = pipeline.run()
    assert stats.frames_in == n
    assert stats.dropped > 0
    assert stats.written + stats.dropped == n                # every frame is written or counted as dropped
    assert len(sink.indices) == stats.written and sink.indices == sorted(set(sink.indices))
    assert sink.indices[-1] == n - 1                         # the newest frame is never the one dropped
    assert all(peak <= pipeline.capacity for peak in stats.queue_peaks.values())
    assert source.most_alive <= len(pipeline.queues) * pipeline.capacity + 2 * 3, source.most_alive
