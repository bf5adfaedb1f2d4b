"""Stopping a job in the middle of a long batch, a second Ctrl-C that comes too late to remove anything, and
settings that ask for more memory than the machine has."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import robust_media as rm

from model.errors import P3MError
from model.matters.base import Matter
from stream.frames import Frame
from stream.jobs import budget
from stream.jobs.budget import check_memory
from stream.pipeline.runner import Pipeline
from stream.protocols import Sink
from stream.stages.matting import MattingStage

REPO = Path(__file__).resolve().parents[2]
BATCH = 32


class CountingMatter(Matter):
    """Counts its calls, calls `on_call(n)` at each, and refuses to run once closed (as MediaPipe's pool does:
    "cannot schedule new futures after shutdown")."""

    name = "counting"

    def __init__(self, on_call=None) -> None:
        self.calls, self.closed, self.on_call = 0, False, on_call

    def describe(self) -> str:
        return "counting test double"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if self.closed:
            raise RuntimeError("used after close()")
        self.calls += 1
        if self.on_call is not None:
            self.on_call(self.calls)
        return np.ones(rgb.shape[:2], np.float32)

    def close(self) -> None:
        self.closed = True


class ListSink(Sink):
    path = "memory"

    def __init__(self) -> None:
        self.ending: str | None = None

    def write(self, frame: Frame) -> None:
        self.frames_written += 1

    def close(self, *, interrupted: bool = False) -> None:
        self.ending = "interrupted" if interrupted else "closed"

    def abort(self) -> None:
        self.ending = "aborted"


def frames(n: int) -> Iterator[Frame]:
    for i in range(n):
        yield Frame(index=i, image=rm.image(i), pts=i)


def test_a_stop_reaches_the_model_in_the_middle_of_a_long_batch(no_pipeline_threads):
    # Ctrl-C during a batch of 32: the model used to finish the whole batch first, and meanwhile the
    # upsampling thread, already stopped, closed the model under it (MediaPipe: "cannot schedule new
    # futures after shutdown", reported as an internal error).
    pipeline: Pipeline

    def cancel_at(n: int) -> None:
        if n == 3:
            pipeline.cancel()

    matter = CountingMatter(cancel_at)
    stages = MattingStage(matter, infer_size=64, batch_size=BATCH).split()
    sink = ListSink()
    pipeline = Pipeline(frames(2 * BATCH), stages, sink)
    stats = pipeline.run()
    assert stats.cancelled and sink.ending == "interrupted"
    assert matter.calls <= 3 + matter.offline_batch          # stopped within one piece of the batch
    assert matter.closed                                     # by the last of the two steps to end


def test_a_second_ctrl_c_after_the_output_was_finalised_removes_nothing_and_says_so(no_pipeline_threads):
    # First Ctrl-C: the sink finalises what it has while a stage is still busy; the second one used to
    # report "aborted: the partial output was removed" although the finished file stayed.
    release = threading.Event()

    class Busy:
        name = "busy"

        def process(self, frame: Frame) -> Frame:
            if frame.index == 2:
                pipeline.cancel()
                release.wait(10)           # a long batch, still running after the sink has finished
            return frame

    sink = ListSink()
    pipeline = Pipeline(frames(10), [Busy()], sink)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(pipeline.run()))
    thread.start()
    while sink.ending is None:
        threading.Event().wait(0.01)
    pipeline.abort()                       # the second Ctrl-C
    release.set()
    thread.join(10)
    assert sink.ending == "interrupted"    # finalised, never aborted
    assert result and result[0].cancelled  # run() reports the kept output instead of raising Aborted


DEFAULT_PLAN = ["matting", "subjects", "TemporalSmoother", "upsampling", "steadiness", "Compositor"]


def test_settings_that_need_more_memory_than_the_machine_has_are_refused_with_the_figures():
    with pytest.raises(P3MError) as e:
        check_memory(320, 240, infer_size=4096, batch=64, queue_size=64, stage_names=DEFAULT_PLAN,
                     available=16 * 2**30)
    assert e.value.message == ("batch 64, queue_size 64 and infer_size 4096 on 320x240 frames would hold about "
                               "47.8 GiB of frames, and this machine has 16.0 GiB available")
    assert "--batch" in e.value.hint and "--infer-size" in e.value.hint
    check_memory(320, 240, infer_size=512, batch=2, queue_size=4, stage_names=DEFAULT_PLAN, available=2**30)
    check_memory(3840, 2160, infer_size=512, batch=2, queue_size=4, stage_names=DEFAULT_PLAN,
                 available=2 * 2**30)                           # the defaults fit: 320x240 in 1 GiB, 4K in 2 GiB


def test_the_count_follows_the_planned_queues_and_the_faces_look_back():
    """Every queue the plan has (one before each stage, one before the sink) holds full frames, those before
    the upsampling model-size data too, and the face blur's look-back holds its frames besides."""
    args = {"infer_size": 512, "batch": 2, "queue_size": 4}
    frame = 1280 * 720 * budget.FULL_FRAME_BYTES
    plain = budget.frames_in_flight_bytes(1280, 720, **args, queues=7, model_queues=4)
    assert budget.queue_counts(DEFAULT_PLAN) == (7, 4)
    assert budget.queue_counts([*DEFAULT_PLAN, "faces"]) == (8, 4)
    assert budget.frames_in_flight_bytes(1280, 720, **args, queues=8, model_queues=4, held=24) \
        == plain + (4 + 24) * frame


def test_a_job_asking_for_too_much_memory_is_refused_before_any_output(inputs, tmp_path, monkeypatch):
    from stream.jobs import budget
    from stream.jobs.offline import cutout

    monkeypatch.setattr(budget, "available_bytes", lambda: 2**30)      # a 1 GiB machine
    out = tmp_path / "out.mp4"
    with pytest.raises(P3MError, match=r"batch 64, queue_size 4 and infer_size 4096 .* 1.0 GiB available"):
        cutout(inputs / "ok.mp4", out, model="key", infer_size=4096, batch=64)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_in_live_exits_130_after_finalising_the_recording(inputs, tmp_path):
    # `cutout` exits 130 after Ctrl-C; `live` used to exit 0.
    rec = tmp_path / "rec.mp4"
    proc = subprocess.Popen([sys.executable, str(REPO / "tests/robustness/robust_cli.py"), "live", "--camera",
                             str(inputs / "long.mp4"), "-m", "key", "--infer-size", "64", "-o", str(rec)],
                            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = 60
        while not any(p.stat().st_size for p in tmp_path.glob(".rec.*part*")) and deadline > 0:
            assert proc.poll() is None, proc.stderr.read()
            threading.Event().wait(0.02)
            deadline -= 0.02
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "stopped after" in stderr.splitlines()[-1] and "Traceback" not in stderr
    assert len(rm.decode(rec)) > 0
