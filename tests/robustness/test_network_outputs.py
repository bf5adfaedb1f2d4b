"""Network peers that misbehave: a stream server that never answers, one that goes away, one that reads slowly,
and silent URL inputs. Ctrl-C must always get through, and one output failing must not destroy another."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import robust_media as rm
from peers import CLOSES, READS, SENDS_THEN_SILENT, SILENT, peer, relays_for

from model.errors import P3MError
from stream.frames import Frame
from stream.jobs.live import live
from stream.protocols import Sink
from stream.sinks.live import StreamSink
from stream.sinks.wrappers import TeeSink
from stream.sources.synthetic import SyntheticCamera

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, str(REPO / "tests/robustness/robust_cli.py")]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _wait(condition, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the job ended early ({proc.returncode}): {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the job did not get there in time"
        time.sleep(0.02)


def _interrupt(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 10) -> str:
    """Send `sig`, and the job's stderr once it ended; a job that does not end in `timeout` s fails the test."""
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"still running {timeout} s after {signal.Signals(sig).name}: a hang") from None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_an_rtmp_server_never_answers_the_handshake_ends_the_job(inputs, tmp_path, sig):
    # The server accepts the TCP connection and never answers: the job used to freeze inside PyAV's connect
    # (holding the GIL, so no signal handler ran) until SIGKILL.
    with peer(SILENT, tmp_path) as (port, connected, _):
        proc = subprocess.Popen([*CLI, "live", "--camera", str(inputs / "long.mp4"), "-m", "key", "--infer-size", "64",
                                 "--stream-url", f"rtmp://127.0.0.1:{port}/live/key"],
                                cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(connected.exists, proc)
            stderr = _interrupt(proc, sig)
        finally:
            proc.kill()
        assert proc.returncode == 130, stderr
        assert stderr.splitlines()[-1] == "error: interrupted" and "Traceback" not in stderr
        assert relays_for(port) == []                   # the connecting process went with the job


def test_an_rtmp_server_that_never_answers_is_refused_after_the_open_timeout(tmp_path):
    # In a child interpreter: before the relay, this call never returned (and no timeout could end it).
    script = ("import sys\nfrom model.errors import P3MError\nfrom stream.sinks.live import StreamSink\n"
              "try:\n    StreamSink(sys.argv[1], width=64, height=48, fps=25, open_timeout_s=1)\n"
              "except P3MError as e:\n    print(e.message)\n")
    with peer(SILENT, tmp_path) as (port, connected, _):
        run = subprocess.run([sys.executable, "-c", script, f"rtmp://127.0.0.1:{port}/live/key"], env=ENV,
                             capture_output=True, text=True, timeout=30)
    assert connected.exists()
    assert run.stdout.strip() == (f"cannot connect to rtmp://127.0.0.1:{port}/live/key: no answer within 1 s "
                                  "(the server accepted nothing, or never finished the handshake)"), run.stderr


@pytest.mark.parametrize("scheme", ["rtmp", "rtsp", "http"])
def test_ctrl_c_while_a_url_input_never_answers_exits_130_at_once(tmp_path, scheme):
    # Opening an input has a 10 s timeout; Ctrl-C used to wait it out and then report "cannot open".
    with peer(SILENT, tmp_path) as (port, connected, _):
        proc = subprocess.Popen([*CLI, "cutout", f"{scheme}://127.0.0.1:{port}/x", "-o", str(tmp_path / "out.mp4"),
                                 "-m", "key"], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _wait(connected.exists, proc)
            stderr = _interrupt(proc, timeout=5)
        finally:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "error: interrupted"
    assert not (tmp_path / "out.mp4").exists()


def test_ctrl_c_while_a_camera_url_reconnects_to_a_server_that_never_answers_exits_at_once(tmp_path):
    # The camera's stream ends and the reconnect hangs on a silent server: each try used to hold the source
    # thread for the 10 s open timeout, and Ctrl-C with it.
    clip = rm.write_clip(tmp_path / "clip.ts", frames=10)
    with peer(SENDS_THEN_SILENT, tmp_path, str(clip)) as (port, reconnecting, _):
        proc = subprocess.Popen([*CLI, "live", "--camera", f"tcp://127.0.0.1:{port}", "-m", "key", "--infer-size",
                                 "64", "-o", str(tmp_path / "rec.mp4")], cwd=tmp_path, env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait(reconnecting.exists, proc)
            stderr = _interrupt(proc, timeout=5)
        finally:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "lost (the stream ended): reconnecting" in stderr and "Traceback" not in stderr


def test_a_stream_whose_server_goes_away_keeps_the_recording_and_names_the_stream(tmp_path, no_pipeline_threads):
    rec = tmp_path / "rec.mp4"
    with peer(CLOSES, tmp_path, "8000") as (port, _, _):
        url = f"tcp://127.0.0.1:{port}"
        with pytest.raises(P3MError) as e:
            live(SyntheticCamera((64, 48), 25, frames=500), model="key", infer_size=64, output=str(rec),
                 stream_url=url, quiet=True)
    assert rec.exists(), "the recording was removed with the broken stream"
    assert len(rm.decode(rec)) >= 2               # finalised: it decodes to its end
    assert e.value.message.startswith(f"stream to {url} failed after ")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("connected-")) == ["rec.mp4"]


def test_a_stream_that_fails_while_a_recording_is_written_is_cleaned_up_alone(tmp_path, caplog, no_pipeline_threads):
    # The same through the live job's own words: the log says which output failed and what was kept.
    rec = tmp_path / "rec.mp4"
    with peer(CLOSES, tmp_path, "8000") as (port, _, _):
        with pytest.raises(P3MError):
            live(SyntheticCamera((64, 48), 25, frames=500), model="key", infer_size=64, output=str(rec),
                 stream_url=f"tcp://127.0.0.1:{port}", quiet=True)
    kept = [r.getMessage() for r in caplog.records if "was finalised and kept" in r.getMessage()]
    assert kept == [f"tcp://127.0.0.1:{port} failed; {rec} was finalised and kept ({len(rm.decode(rec))} frames)"]


def test_live_stats_count_the_frames_a_slow_stream_really_took(tmp_path, monkeypatch, no_pipeline_threads):
    # The stream's writer is slower than the camera: it skips frames. `sent` counts what the outputs were given;
    # the line must also say what went out on the stream (it used to claim every frame was sent).
    took: list[int] = []
    write = StreamSink.write

    def slow_write(self, frame):
        time.sleep(0.1)
        write(self, frame)
        took.append(frame.index)

    monkeypatch.setattr(StreamSink, "write", slow_write)
    with peer(READS, tmp_path) as (port, _, server):
        url = f"tcp://127.0.0.1:{port}"
        result = live(SyntheticCamera((64, 48), 25, frames=50), model="key", infer_size=64, stream_url=url,
                      quiet=True)
        assert int(server.communicate(timeout=30)[0]) > 0
    (name, out, skipped), = result.stats.behind
    assert name == url and out == len(took) and skipped > 0
    assert out < result.stats.sent
    assert f"{url}: {out} out, {skipped} skipped" in result.stats.line()


class _Output(Sink):
    """An output that records how it ended; `fails` makes its writes raise."""

    def __init__(self, path: str, fails: bool = False) -> None:
        self.path, self.fails, self.ending = path, fails, None

    def write(self, frame) -> None:
        if self.fails:
            raise P3MError(f"stream to {self.path} failed after 0 frames: Broken pipe", "")
        self.frames_written += 1

    def close(self, *, interrupted: bool = False) -> None:
        self.ending = "interrupted" if interrupted else "closed"

    def abort(self) -> None:
        self.ending = "aborted"


@pytest.mark.parametrize("independent", [True, False])
def test_a_tee_removes_only_the_output_that_failed_when_its_outputs_are_independent(independent):
    record, stream = _Output("rec.mp4"), _Output("tcp://127.0.0.1:9", fails=True)
    tee = TeeSink([record, stream], independent=independent)
    with pytest.raises(P3MError, match="tcp://127.0.0.1:9"):
        tee.write(Frame(index=0, image=rm.image(0), pts=0))
    tee.abort()                                  # what the pipeline does after an error
    assert stream.ending == "aborted"
    assert record.ending == ("interrupted" if independent else "aborted")   # live keeps it; offline does not


def test_an_independent_tee_without_a_failed_output_still_aborts_them_all():
    # An error elsewhere (a stage) is not one output failing: nothing of this tee is to be kept.
    outputs = [_Output("rec.mp4"), _Output("tcp://127.0.0.1:9")]
    TeeSink(outputs, independent=True).abort()
    assert [o.ending for o in outputs] == ["aborted", "aborted"]
