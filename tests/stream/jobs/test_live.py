"""The live job: bounded latency with a slow model (alpha reuse) or a slow output (stale frames dropped), in
order, through pyvirtualcam's real code path with a recording backend; the missing virtual camera; the
other outputs (recording, RTMP, preview) and the live config."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import pyvirtualcam
from click.testing import CliRunner
from helpers.doubles import KeyMatter, scene
from helpers.media import decoded_video
from helpers.ports import free_port, wait_listening

import model.matters.registry as matters
from model.errors import P3MError
from model.matters.base import Matter
from model.settings import ConfigError
from stream.cli.live import live as live_command
from stream.cli.main import _Group
from stream.frames import Frame
from stream.jobs.assembly import plan_stages
from stream.jobs.config import LiveConfig, load_live_config
from stream.jobs.demo import make_demo_clip
from stream.jobs.live import live
from stream.pipeline.runner import Pipeline
from stream.protocols import Sink
from stream.sinks.live import PreviewSink, StreamSink, virtual_camera_hint
from stream.sinks.wrappers import BackgroundSink
from stream.sources.synthetic import SyntheticCamera, read_stamp
from stream.stages import compositing
from stream.stages.alpha_reuse import AlphaReuse
from stream.stages.compositing import Compositor
from stream.stages.device_cutout import DeviceCutout
from stream.stages.device_matting import DeviceMatting
from stream.stages.matting import MattingStage
from stream.stages.smoothing import TemporalSmoother

FPS = 30
SIZE = (160, 120)
BACKEND = "p3m-test"
LIVE = dict(virtual_cam="auto", virtual_cam_backend=BACKEND, background="green", infer_size=64,
            upsample="bilinear", smoothing=False, quiet=True)


class Recorder:
    """A pyvirtualcam backend that keeps what it is sent (and when); `delay` makes `send` slow."""

    instances: list[Recorder] = []
    delay = 0.0

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.frames: list[np.ndarray] = []
        self.closed = False
        Recorder.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.frames.append(frame.reshape(self.height, self.width, 3).copy())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return "recorder"

    def native_fourcc(self) -> None:
        return None

    @property
    def stamps(self) -> list[int]:
        return [read_stamp(frame) for frame in self.frames]


@pytest.fixture
def vcam(monkeypatch: pytest.MonkeyPatch) -> type[Recorder]:
    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, BACKEND, Recorder)
    monkeypatch.setattr(Recorder, "instances", [])
    monkeypatch.setattr(Recorder, "delay", 0.0)
    return Recorder


class ConstantMatter(Matter):
    """Alpha 1 everywhere (so the composite is the camera image, stamps intact), `seconds` per frame."""

    name = "constant"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        return np.ones(rgb.shape[:2], np.float32)

    def describe(self) -> str:
        return f"constant alpha, {self.seconds * 1000:.0f} ms/frame (test)"


@pytest.fixture(autouse=True)
def test_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(matters._REGISTRY, "test-slow", lambda weights, device, precision: ConstantMatter(0.12))
    monkeypatch.setitem(matters._REGISTRY, "test-fast", lambda weights, device, precision: ConstantMatter(0.0))


def _strictly_increasing(values: list[int]) -> bool:
    return all(b > a for a, b in zip(values, values[1:]))


def _in_order(stamps: list[int]) -> bool:
    """Every frame after the one before it; a repeat (RepeatLast, while no new frame came) is the same frame."""
    distinct = [s for i, s in enumerate(stamps) if i == 0 or s != stamps[i - 1]]
    return _strictly_increasing(distinct)


# --- latency policy --------------------------------------------------------------------------------------
# These time a live job against the clock. The shared CI machines at times stall a whole process for 150-220 ms
# (every thread at once: the sink repeats frames meanwhile), which fails one run; a timed test runs again then,
# with the same bounds. A real regression fails every run.
timed = pytest.mark.flaky(reruns=2)


@timed
def test_a_slow_model_reuses_the_newest_alpha_and_latency_stays_bounded(vcam) -> None:
    result = live(SyntheticCamera(SIZE, FPS, seconds=2.0), model="test-slow", **LIVE)
    s = result.stats
    sent = vcam.instances[0].stamps
    assert len(sent) == s.sent + s.repeated and _in_order(sent)       # never out of order
    assert s.latency_p95 <= 2 / FPS                                    # the model takes 3.6 frame intervals
    assert s.sent >= 0.8 * s.frames_in                                 # the camera's rate goes out...
    assert s.matted <= s.frames_in / 2 and s.reused >= s.sent - s.matted   # ...with the newest alpha reused
    assert s.skipped > 0 and s.matted + s.skipped <= s.frames_in       # stale frames dropped, never queued


@timed
def test_a_slow_output_drops_stale_frames_instead_of_queueing_them(vcam) -> None:
    vcam.delay = 0.05                                                  # 1.5 frame intervals per send
    result = live(SyntheticCamera(SIZE, FPS, seconds=1.5), model="test-fast", **{**LIVE, "queue_size": 1})
    s = result.stats
    assert s.dropped > 0 and s.sent + s.dropped <= s.frames_in
    # Bounded by one frame waiting behind one being sent (offline queues would grow by 0.5 frame per frame).
    assert s.latency_p95 <= 2 * vcam.delay + 2 / FPS
    assert _in_order(vcam.instances[0].stamps)


@timed
def test_a_fast_model_gives_each_frame_its_own_alpha(vcam) -> None:
    result = live(SyntheticCamera(SIZE, FPS, seconds=1.0), model="test-fast", **LIVE)
    s = result.stats
    assert s.reused <= 0.2 * s.sent and s.latency_p95 <= 2 / FPS


@timed
@pytest.mark.parametrize("model_ms, fps, share", [(5, 30, 0.95), (25, 20, 0.85)])
def test_a_model_that_keeps_up_gives_frames_their_own_matte(vcam, monkeypatch, model_ms, fps, share) -> None:
    """A model within the camera's frame interval: frames leave with their own matte (5 ms: >= 95 %; 25 ms, over
    the old fixed 20 ms wait where 39 of 40 frames went out with the previous frame's: >= 85 % on loaded cores).
    The latency target is bench/live_cpu.py's to measure."""
    monkeypatch.setitem(matters._REGISTRY, "test-keeps-up",
                        lambda weights, device, precision: ConstantMatter(model_ms / 1000))
    result = live(SyntheticCamera(SIZE, fps, seconds=2.0), **{**LIVE, "model": "test-keeps-up"})
    s = result.stats
    assert s.sent >= 0.9 * s.frames_in and s.sent - s.reused >= share * s.sent, s.line()
    assert sum(count for _, count in s.reuse_ages) == s.reused


def test_the_camera_starts_after_the_foreground_imports(vcam, monkeypatch) -> None:
    """Live waits for the compositor's warm-up (pymatting's import, a second on loaded cores) before its camera
    starts, so that the first frames do not queue up behind it."""
    warm_ups: list[threading.Thread] = []

    def slow_warm_up() -> threading.Thread:
        thread = threading.Thread(target=time.sleep, args=(0.5,), daemon=True)
        thread.start()
        warm_ups.append(thread)
        return thread

    monkeypatch.setattr(compositing, "warm_up", slow_warm_up)
    importing_at_start: list[bool] = []
    run = Pipeline.run
    monkeypatch.setattr(Pipeline, "run", lambda self, *a, **k: (
        importing_at_start.append(warm_ups[0].is_alive()), run(self, *a, **k))[1])
    live(SyntheticCamera(SIZE, FPS, seconds=0.3), model="test-fast", **LIVE)
    assert importing_at_start == [False]


def test_while_the_camera_is_away_the_last_frame_keeps_going_out(vcam) -> None:
    camera = SyntheticCamera(SIZE, FPS, frames=20, gaps={10: 0.4})   # 0.4 s without a frame before frame 10
    result = live(camera, model="test-fast", **LIVE)
    stamps = vcam.instances[0].stamps
    assert result.stats.repeated >= 5 and len(stamps) == result.stats.sent + result.stats.repeated
    assert stamps == sorted(stamps)                                   # a repeat is the last frame, never older
    assert max(stamps.count(i) for i in set(stamps)) >= 6


# --- AlphaReuse ------------------------------------------------------------------------------------------

class IndexMatte:
    """A matting stage whose alpha holds the frame index; `seconds` per frame; may fail at `fail_at`."""

    def __init__(self, seconds: float = 0.0, fail_at: int | None = None) -> None:
        self.seconds, self.fail_at, self.closed_on = seconds, fail_at, None

    def process(self, frame: Frame) -> Frame:
        if frame.index == self.fail_at:
            raise ValueError("model exploded")
        time.sleep(self.seconds)
        frame.alpha = np.full(frame.image.shape[:2], frame.index, np.float32)
        return frame

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


def _frames(n: int) -> list[Frame]:
    return [Frame(index=i, image=np.zeros((8, 8, 3), np.uint8)) for i in range(n)]


def test_alpha_reuse_waits_for_the_own_alpha_only_when_the_model_keeps_up() -> None:
    stage = IndexMatte()
    fast = AlphaReuse([stage], wait_s=0.2)
    try:
        for frame in _frames(6):
            time.sleep(0.01)
            assert fast.process(frame).extras["alpha_from"] == frame.index
    finally:
        fast.close()
    assert stage.closed_on == "p3m-matting" and fast.reused == 0

    slow = AlphaReuse([IndexMatte(seconds=0.1)], wait_s=0.02)
    try:
        first, *rest = _frames(5)
        assert slow.process(first).extras["alpha_from"] == 0           # nothing leaves before the first alpha
        start = time.perf_counter()
        used = [slow.process(frame).extras["alpha_from"] for frame in rest]
        assert time.perf_counter() - start < 0.1                        # 4 frames in less than one model call
        assert used == [0, 0, 0, 0] and slow.reused == 4 and np.all(rest[-1].alpha == 0)
    finally:
        slow.close()


def test_alpha_reuse_does_not_wait_on_a_model_slower_than_the_camera() -> None:
    """However long `wait_s` is, a frame waits at most a frame interval: a model slower than that cannot keep up,
    and the reused alphas' ages are counted."""
    slow = AlphaReuse([IndexMatte(seconds=0.06)], wait_s=1.0, interval_s=0.02)
    try:
        frames = _frames(12)
        slow.process(frames[0])                                          # waits for the first alpha
        start = time.perf_counter()
        for frame in frames[1:]:
            time.sleep(0.02)
            slow.process(frame)
        assert time.perf_counter() - start < 11 * 0.02 + 0.15           # no frame waited for the slow model
        assert slow.reused >= 8 and sum(slow.reuse_ages.values()) == slow.reused
        assert max(slow.reuse_ages) >= 2                                 # 3 frame intervals a model call
    finally:
        slow.close()


class IndexCutout(IndexMatte):
    """IndexMatte that also composites (as the CUDA worker does): output = the frame index in every pixel."""

    def process(self, frame: Frame) -> Frame:
        super().process(frame)
        frame.output = np.full(frame.image.shape, frame.index, np.uint8)
        return frame


def test_a_frame_with_its_own_alpha_leaves_with_the_workers_composite() -> None:
    compositor = Compositor("green")
    fast = AlphaReuse([IndexCutout()], wait_s=0.2)
    try:
        for frame in _frames(4):
            time.sleep(0.01)
            out = compositor.process(fast.process(frame))
            assert out.extras["alpha_from"] == frame.index and np.all(out.output == frame.index)
    finally:
        fast.close()
    slow = AlphaReuse([IndexCutout(seconds=0.1)], wait_s=0.02)
    try:
        first, *rest = _frames(3)
        assert np.all(compositor.process(slow.process(first)).output == 0)
        for frame in rest:                      # an older frame's alpha: blended here, over green
            out = compositor.process(slow.process(frame))
            assert out.extras["alpha_from"] == 0
            assert out.output.shape == (8, 8, 3) and np.all(out.output == (0, 255, 0))
    finally:
        slow.close()


def test_the_cuda_worker_composites_unless_the_background_is_a_video(tmp_path: Path) -> None:
    # plan_stages decides by the matting stage's device path: a CPU DeviceMatting stands in for CUDA's.
    clip = tmp_path / "bg.mp4"
    make_demo_clip(clip, seconds=0.2, size=(64, 48))
    stage = MattingStage(KeyMatter(), infer_size=64)
    assert [type(s).__name__ for s in plan_stages(stage, TemporalSmoother(), Compositor("blur"), live=True)] == \
        ["_ModelStep", "TemporalSmoother", "_UpsampleStep"]               # on the CPU: no compositing in the worker
    blur = Compositor("blur")
    assert plan_stages(stage, TemporalSmoother(), blur)[-1] is blur      # offline on the CPU: a stage of its own
    stage.device_path = DeviceMatting(KeyMatter(), stage.infer_shape)
    for background, composites in (("green", True), ("blur:8", True), ("transparent", True), (str(clip), False)):
        compositor = Compositor(background)
        (worker,) = plan_stages(stage, TemporalSmoother(), compositor, live=True)
        assert isinstance(worker, DeviceCutout) and (worker.compositor is not None) == composites, background
        assert worker.compositor is not compositor              # the compose path keeps its own
        frame = worker.process(Frame(index=0, image=scene(0)))
        reference = compositor.process(Frame(index=0, image=frame.image, alpha=frame.alpha))
        if composites:       # the blend's rounding; the device's blur is within 2-4 grey levels of OpenCV's
            bound = 4 if background.startswith("blur") else 1
            # the foreground colours at edges: solved on the device sweeping all pixels at once (not alike)
            bound += 8 if background == "transparent" else 3
            assert worker.compositor.foreground_estimation
            assert np.abs(frame.output.astype(int) - reference.output.astype(int)).max() <= bound
        else:
            assert frame.output is None
        compositor.close()


def test_alpha_reuse_reports_the_worker_error_in_the_compose_path() -> None:
    reuse = AlphaReuse([IndexMatte(fail_at=1)], wait_s=0.0)
    frames = _frames(3)
    try:
        reuse.process(frames[0])
        with pytest.raises(ValueError, match="model exploded"):
            for frame in frames[1:] + _frames(50):
                reuse.process(frame)
                time.sleep(0.005)
    finally:
        reuse.close()


def test_a_model_error_ends_the_live_job(vcam, monkeypatch) -> None:
    monkeypatch.setitem(matters._REGISTRY, "test-broken", lambda w, d, p: _Broken())
    with pytest.raises(Exception, match="model exploded"):
        live(SyntheticCamera(SIZE, FPS, seconds=1.0), model="test-broken", **LIVE)


class _Broken(ConstantMatter):
    def __init__(self) -> None:
        super().__init__(0.0)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        raise RuntimeError("model exploded")


class _Stepped(ConstantMatter):
    """Takes sizes in steps of 64 only (P3M-Net takes steps of 32)."""

    size_multiple = 64

    def __init__(self) -> None:
        super().__init__(0.0)


def test_an_infer_size_the_model_cannot_take_opens_no_output(vcam, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setitem(matters._REGISTRY, "test-stepped", lambda w, d, p: _Stepped())
    recording = tmp_path / "rec.mp4"
    with pytest.raises(P3MError, match="infer_size 96 does not suit constant alpha, 0 ms/frame") as e:
        live(SyntheticCamera(SIZE, FPS, frames=5), model="test-stepped", output=str(recording),
             **{**LIVE, "infer_size": 96})
    assert "\n" not in str(e.value)
    assert vcam.instances == [] and not recording.exists()        # neither the virtual camera nor the file

# --- virtual camera, CLI ---------------------------------------------------------------------------------

def _group() -> _Group:
    return _Group(commands={"live": live_command})


def _no_real_virtual_camera() -> bool:
    try:
        with pyvirtualcam.Camera(64, 48, 30):
            return False
    except RuntimeError:
        return True


def test_no_virtual_camera_says_how_to_create_one_and_exits_non_zero() -> None:
    if not _no_real_virtual_camera():
        pytest.skip("this machine has a virtual camera device")
    args = ["--camera", "synthetic", "--camera-size", "64x48", "--virtual-cam", "--model", "test-fast"]
    result = CliRunner().invoke(_group(), ["live", *args])
    assert result.exit_code == 1
    assert "error: no virtual camera available" in result.output
    assert f"hint: {virtual_camera_hint()}" in result.output
    assert "modprobe v4l2loopback devices=1 exclusive_caps=1 card_label=p3m" in virtual_camera_hint() \
        or "OBS" in virtual_camera_hint()
    plain = CliRunner().invoke(live_command, args)                    # the command alone: the same error
    assert plain.exit_code != 0 and isinstance(plain.exception, P3MError)


def test_cli_sends_records_and_prints_stats_every_second(vcam, tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    args = ["live", "--camera", "synthetic", "--camera-size", "160x120", "--camera-fps", "30", "--duration", "2.2",
            "--virtual-cam", "--virtual-cam-backend", BACKEND, "--model", "test-fast", "--infer-size", "64",
            "-b", "green", "-o", str(out), "--stats", "--blur-faces", "-q"]
    result = CliRunner().invoke(_group(), args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("in ")]
    assert len(lines) >= 1 and "latency p50" in lines[0] and "reused" in lines[0] and "dropped" in lines[0]
    assert "stopped after" in result.output.splitlines()[-1]
    recorded = decoded_video(out)
    assert len(recorded) >= 30 and (recorded[0].width, recorded[0].height) == (160, 120)
    assert len(vcam.instances[0].frames) >= 30 and vcam.instances[0].closed


def test_with_no_output_asked_the_virtual_camera_is_the_default(vcam) -> None:
    options = {k: v for k, v in LIVE.items() if k != "virtual_cam"}
    result = live(SyntheticCamera(SIZE, FPS, frames=5), model="test-fast", **options)
    assert result.outputs == ["virtual camera recorder"] and len(vcam.instances[0].frames) == 5


def test_a_transparent_background_cannot_go_to_a_virtual_camera(vcam) -> None:
    with pytest.raises(P3MError, match="virtual camera cannot show a transparent background"):
        live(SyntheticCamera(SIZE, FPS, frames=5), model="test-fast", **{**LIVE, "background": "transparent"})


# --- network stream, preview, background writer -----------------------------------------------------------

# The receiving servers run in their own process: PyAV holds the GIL while it connects or blocks on a
# socket, so a server thread in this process could stall the client (and a test could hang for good).
_RTMP_SERVER = """
import av, json, sys
received = []
try:
    with av.open(sys.argv[1], format="flv", options={"listen": "1"}) as container:
        for frame in container.decode(video=0):
            received.append([container.streams.video[0].codec_context.name, frame.width, frame.height])
except av.FFmpegError:
    pass                                   # the client hung up
print(json.dumps(received))
"""

_WEBM_SERVER = """
import av, json, sys
received = []
try:
    with av.open(sys.argv[1] + "?listen=1", format="webm") as container:
        decoder = av.CodecContext.create("libvpx-vp9", "r")     # the default decoder drops the alpha
        for packet in container.demux(video=0):
            if packet.size:
                received.extend([f.format.name, f.width, f.height] for f in decoder.decode(packet))
except av.FFmpegError:
    pass
print(json.dumps(received))
"""


def _serve(script: str, url: str, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True)
    wait_listening(port)
    return server


def _received(server: subprocess.Popen) -> list[tuple]:
    try:
        out, _ = server.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        raise
    return [tuple(item) for item in json.loads(out)]


def test_rtmp_stream_reaches_a_server_as_h264(vcam) -> None:
    port = free_port()
    url = f"rtmp://127.0.0.1:{port}/live/test"
    server = _serve(_RTMP_SERVER, url, port)
    result = live(SyntheticCamera(SIZE, FPS, frames=20), model="test-fast", stream_url=url, **LIVE)
    received = _received(server)
    assert url in result.outputs
    assert len(received) >= 10 and received[0] == ("h264", *SIZE)


def test_transparent_streams_need_a_format_with_alpha(tmp_path: Path) -> None:
    with pytest.raises(P3MError, match="FLV/H.264 carries no usable alpha") as e:
        StreamSink("rtmp://127.0.0.1:1/live/x", width=64, height=48, fps=30, transparent=True)
    assert "srt://" in e.value.hint and "chroma-key" in e.value.hint
    with pytest.raises(P3MError, match="unsupported protocol"):
        StreamSink("http://example.com/x", width=64, height=48, fps=30)


def test_a_transparent_overlay_streams_as_vp9_with_alpha_over_tcp(vcam) -> None:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    server = _serve(_WEBM_SERVER, url, port)
    options = {k: v for k, v in LIVE.items() if not k.startswith("virtual_cam")}
    live(SyntheticCamera(SIZE, FPS, frames=10), model="test-fast", **{**options, "background": "transparent"},
         stream_url=url)
    received = _received(server)
    assert len(received) >= 5 and received[0] == ("yuva420p", *SIZE)


def test_srt_without_libsrt_is_a_clear_error() -> None:
    try:
        sink = StreamSink("srt://127.0.0.1:9?mode=caller&connect_timeout=100", width=64, height=48, fps=30)
    except P3MError as e:
        assert "cannot stream to srt://" in e.message or "cannot connect" in e.message
    else:
        sink.abort()
        pytest.skip("this PyAV build has SRT")


def test_preview_needs_a_display_and_quits_on_q(monkeypatch) -> None:
    import stream.sinks.live as outputs

    monkeypatch.setattr(outputs.platform, "system", lambda: "Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(P3MError, match="needs a display"):
        PreviewSink()
    monkeypatch.setenv("DISPLAY", ":99")
    shown, quits = [], []
    monkeypatch.setattr(outputs.cv2, "imshow", lambda title, image: shown.append(image.shape))
    monkeypatch.setattr(outputs.cv2, "waitKey", lambda ms: ord("q"))
    monkeypatch.setattr(outputs.cv2, "getWindowProperty", lambda title, prop: 1.0)
    monkeypatch.setattr(outputs.cv2, "destroyWindow", lambda title: None)
    preview = PreviewSink(on_quit=lambda: quits.append(1))
    preview.write(Frame(index=0, image=np.zeros((48, 64, 3), np.uint8), output=np.zeros((48, 64, 4), np.uint8)))
    preview.show()
    preview.show()
    preview.destroy()
    assert shown == [(48, 64, 3)] and quits == [1]                    # RGBA shown over a checkerboard; quit once


class _SlowSink(Sink):
    def __init__(self, fail: bool = False) -> None:
        self.path, self.fail, self.indexes, self.ending = "slow", fail, [], None

    def write(self, frame: Frame) -> None:
        time.sleep(0.03)
        if self.fail:
            raise OSError("disk full")
        self.indexes.append(frame.index)
        self.frames_written += 1

    def close(self, *, interrupted: bool = False) -> None:
        self.ending = "closed"

    def abort(self) -> None:
        self.ending = "aborted"


def test_background_sink_keeps_the_newest_frame_and_reports_errors_on_close() -> None:
    inner = BackgroundSink(_SlowSink())
    for frame in _frames(10):
        inner.write(frame)                                             # returns at once: the writer is behind
    inner.close()
    assert inner.skipped > 0 and inner.sink.indexes[-1] == 9 and inner.sink.ending == "closed"
    assert _strictly_increasing(inner.sink.indexes)
    broken = BackgroundSink(_SlowSink(fail=True))
    broken.write(_frames(1)[0])
    with pytest.raises(OSError, match="disk full"):
        broken.close()
    assert broken.sink.ending == "aborted"


class _StalledSink(_SlowSink):
    """A network sink whose write waits for a peer that never reads, until it is cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.writing, self.released = threading.Event(), threading.Event()

    def write(self, frame: Frame) -> None:
        self.writing.set()
        if not self.released.wait(10):
            raise OSError("write timed out")

    def cancel(self) -> None:
        self.released.set()


def test_background_sink_abort_cancels_a_stalled_write_before_waiting_for_it() -> None:
    stalled = _StalledSink()
    sink = BackgroundSink(stalled)
    sink.write(_frames(1)[0])
    assert stalled.writing.wait(10)
    sink.abort()
    assert stalled.released.is_set() and stalled.ending == "aborted"


# --- config ----------------------------------------------------------------------------------------------

def test_the_virtual_background_preset_loads_into_live_config() -> None:
    config = load_live_config()
    assert isinstance(config, LiveConfig) and config.background == "blur:25" and config.queue_size <= 2
    assert config.replace(blur_faces=True, camera_size="1280x720").blur_faces


@pytest.mark.parametrize("field, value", [("queue_size", 4), ("camera_size", "big"), ("blur_style", "swirl"),
                                          ("camera_format", "h264"), ("alpha_wait_ms", -1)])
def test_bad_live_fields_are_named(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        load_live_config(**{field: value})


def test_unknown_live_option_lists_the_live_fields() -> None:
    with pytest.raises(ConfigError, match="unknown option") as e:
        load_live_config(webcam="x")
    assert "virtual_cam" in e.value.hint and "blur_faces" in e.value.hint


_STUCK_SERVER = """
import socket, sys, time
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(1)
connection, _ = server.accept()
time.sleep(30)                             # accepts, never reads
"""


def test_a_tcp_receiver_that_stops_reading_is_an_error_not_a_hang() -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", _STUCK_SERVER, str(port)])
    try:
        wait_listening(port)
        sink = StreamSink(f"tcp://127.0.0.1:{port}", width=320, height=240, fps=30, write_timeout_s=1.0)
        noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)   # fills the buffers fast
        start = time.perf_counter()
        with pytest.raises(P3MError, match="failed after .*stalled") as e:
            for i in range(100_000):
                sink.write(Frame(index=i, image=np.roll(noise, i, axis=1), pts=i * 33))
        assert time.perf_counter() - start < 15 and "network" in e.value.hint
        sink.abort()
    finally:
        server.kill()
        server.wait()
