"""The live job: a webcam in, a composited stream out (virtual camera, preview, recording, network stream),
with low and bounded latency. Same Pipeline and stages as the offline job; only the queue policy and the
ends differ.

Threads and who owns them (→ is a LatestQueue of `queue_size` 1-2 frames that drops the stalest):

    p3m-source   camera capture (paced)   → p3m-alpha   pairs each frame with the newest alpha
                                             ├─ p3m-matting (owned by AlphaReuse): matting + smoothing on the
                                             │  newest frame offered (one-frame mailbox), publishes its alpha
                                             │  (on CUDA with a background that is not a video: its composite too)
                                          → p3m-compositor → p3m-faces (optional) → p3m-sink:
                                             RepeatLast(Tee[virtual camera, preview, stream*, recording*])
                                             (* on their own threads: BackgroundSink)
    caller       Pipeline.run: preview window, the once-a-second stats line

The compose path never waits for a slow model: every camera frame leaves with the newest alpha there is
(`reused` when it belongs to an older frame). When the model keeps up, a frame waits up to
`alpha_wait_ms` for its own alpha. Nothing is sent before the first alpha exists (privacy). A frame that
got its own alpha from a CUDA worker also gets the worker's composite, made on the device where the frame
already is, and the compositor passes it on (the CPU blend takes 3.6 ms of a 1080p frame here).
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

import cv2

from model.errors import P3MError
from model.matters import make_matter
from stream.camera import BACKENDS, PIXEL_FORMATS, LiveSource, open_camera, parse_size
from stream.config import ConfigError, CutoutConfig
from stream.device_cutout import matting_steps
from stream.offline import limit_threads
from stream.faces import FACE_MODELS, STYLES, FaceBlur
from stream.frames import Frame
from stream.outputs import BackgroundSink, PreviewSink, RepeatLast, StreamSink, VirtualCameraSink
from stream.pipeline import POLL_S, Cancelled, Pipeline, Stage, Stats, cancel_on_signals
from stream.sinks import Sink, TeeSink, open_sink
from stream.sources import Source
from stream.stages import Compositor, MattingStage, TemporalSmoother

log = logging.getLogger(__name__)

LIVE_PRESET = "virtual_background"

@dataclass(frozen=True)
class LiveConfig(CutoutConfig):
    """A cut-out config plus the live job's ends: camera, virtual camera, preview, stream, recording, faces."""

    CHOICES: ClassVar[Mapping[str, tuple[str, ...]]] = {
        **CutoutConfig.CHOICES, "camera_format": PIXEL_FORMATS, "camera_backend": BACKENDS,
        "blur_style": STYLES, "face_model": tuple(FACE_MODELS)}
    RANGES: ClassVar[Mapping[str, tuple[float, float]]] = {
        **CutoutConfig.RANGES, "camera_fps": (1, 240), "queue_size": (1, 2), "alpha_wait_ms": (0, 1000),
        "camera_timeout": (0, 86400), "stream_bitrate": (100, 100_000)}

    queue_size: int = 2                  # live queues hold 1-2 frames and drop the stalest
    camera_size: str | None = None       # WIDTHxHEIGHT asked of the camera (scales a file's frames)
    camera_fps: float | None = None      # rate asked of the camera (a file plays at its own)
    camera_format: str | None = None     # mjpeg | yuyv (the camera's default when unset)
    camera_backend: str = "auto"         # auto (PyAV, OpenCV where PyAV lacks the device) | pyav | opencv
    camera_timeout: float = 60.0         # seconds a lost camera is retried before giving up (0: forever)
    virtual_cam: str | None = None       # auto (first free device) | a device; unset: on when no other output
    virtual_cam_backend: str | None = None   # a pyvirtualcam backend (v4l2loopback, obs, unitycapture)
    preview: bool = False                # an OpenCV window (q quits)
    output: str | None = None            # also record to this file (same formats as `p3m cutout`)
    stream_url: str | None = None        # rtmp://… (FLV/H.264), srt:// or tcp:// (MPEG-TS, or WebM+alpha), udp://
    stream_bitrate: int = 2500           # kbit/s for --stream-url
    alpha_wait_ms: float = 20.0          # how long a frame may wait for its own alpha when the model keeps up

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.camera_size is not None:
            try:
                parse_size(self.camera_size)
            except P3MError as e:
                raise ConfigError(f"camera_size: {e.message}", e.hint) from None

    @property
    def wants_output(self) -> bool:
        """True when some output besides the default virtual camera was asked for."""
        return bool(self.virtual_cam or self.preview or self.output or self.stream_url)


def load_live_config(path: str | Path | None = LIVE_PRESET, **overrides: Any) -> LiveConfig:
    """Defaults, then the YAML preset (default `virtual_background`), then the non-None overrides."""
    return LiveConfig.load(path, **overrides)


class AlphaReuse:
    """The live matting step: `process` offers each frame to a matting worker thread (a one-frame mailbox,
    newest wins) and returns at once with the newest alpha the worker has published, possibly an older
    frame's (`reused`). When the worker is idle and its recent time is within `wait_s`, the frame waits up
    to `wait_s` for its own alpha. The first frame waits for the first alpha: nothing leaves unmatted.

    The worker runs `stages` (matting and smoothing, perhaps compositing: `worker_steps`) and closes them on
    its own thread. A frame that gets its own alpha also gets the worker's `output` when it made one.
    """

    name = "alpha"

    def __init__(self, stages: Sequence[Stage], wait_s: float = 0.02) -> None:
        self.stages, self.wait_s = list(stages), wait_s
        self.matted = self.reused = self.skipped = 0
        self.should_stop: Callable[[], bool] = lambda: False
        self._cond = threading.Condition()
        self._mailbox: Frame | None = None
        self._busy = self._closing = False
        self._alpha = None
        self._alpha_index = -1
        self._output = None                       # the worker's composite of frame `_alpha_index`, if it made one
        self._took: float | None = None           # moving average of the worker's time per frame
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def process(self, frame: Frame) -> Frame:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="p3m-matting", daemon=True)
            self._thread.start()
        # The worker gets its own Frame record (the image is shared, read-only): it sets `alpha` on it
        # while this frame goes on down the compose path.
        job = Frame(index=frame.index, image=frame.image, pts=frame.pts, time_base=frame.time_base,
                    captured_at=frame.captured_at)
        with self._cond:
            self._raise()
            if self._mailbox is not None:
                self.skipped += 1
            self._mailbox = job
            idle = not self._busy
            self._cond.notify_all()
            if self._alpha is None:
                self._wait(lambda: self._alpha is not None, None)
            elif idle and self._took is not None and self._took <= self.wait_s:
                self._wait(lambda: self._alpha_index >= frame.index, self.wait_s)
            alpha, source, output = self._alpha, self._alpha_index, self._output
        if alpha.shape != frame.image.shape[:2]:      # the camera came back at another size
            alpha = cv2.resize(alpha, (frame.image.shape[1], frame.image.shape[0]), interpolation=cv2.INTER_LINEAR)
        frame.alpha = alpha
        frame.extras["alpha_from"] = source
        if source != frame.index:
            self.reused += 1
        elif output is not None:
            frame.output = output                     # its own composite: the compositor passes it on
        return frame

    def _wait(self, ready: Callable[[], bool], timeout: float | None) -> None:
        """Wait on the condition (held) until `ready()`, `timeout` s, a worker error or a stop request."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        while not ready():
            self._raise()
            if self.should_stop() or self._closing:
                raise Cancelled
            left = POLL_S if deadline is None else min(POLL_S, deadline - time.perf_counter())
            if left <= 0:
                return
            self._cond.wait(left)

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._mailbox is None and not self._closing:
                        self._cond.wait()
                    if self._closing:
                        return
                    job, self._mailbox, self._busy = self._mailbox, None, True
                start = time.perf_counter()
                for stage in self.stages:
                    job = stage.process(job)
                took = time.perf_counter() - start
                with self._cond:
                    self._alpha, self._alpha_index, self._output = job.alpha, job.index, job.output
                    self.matted += 1
                    # The first call includes the model's warm-up: start the average at the second.
                    self._took = took if self.matted <= 2 else 0.8 * self._took + 0.2 * took
                    self._busy = False
                    self._cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - re-raised in the compose path by process()
            with self._cond:
                self._error, self._busy = e, False
                self._cond.notify_all()
        finally:
            self._close_stages()

    def _close_stages(self) -> None:
        for stage in self.stages:
            close = getattr(stage, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception:
                if self._error is None:
                    raise
                log.exception("closing %s after an error failed too", type(stage).__name__)
        self.stages = []

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        else:
            self._close_stages()       # never started: the stages were never used on another thread


def worker_steps(matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor) -> list[Stage]:
    """The live matting worker's stages: matting and smoothing (`matting_steps`), and on CUDA with a
    `stateless` background, compositing too, on the device, by a second Compositor of the same background
    (`compositor` stays on the compose path for frames that reuse an older alpha)."""
    if matting.device_path is not None and compositor.stateless:
        return matting_steps(matting, smoother, Compositor(compositor.spec))
    return matting_steps(matting, smoother)


@dataclass(frozen=True)
class LiveStats:
    """A snapshot of the live counters (see `line()`)."""

    seconds: float
    frames_in: int          # from the camera
    matted: int             # frames the model saw
    skipped: int            # frames the model never saw (a newer one replaced them in its one-frame mailbox)
    reused: int             # frames sent with an older frame's alpha
    dropped: int            # frames never sent (a live queue replaced them)
    sent: int               # frames out (each counted once, however many outputs)
    repeated: int           # the last frame re-sent while the camera was away
    reconnects: int
    latency_p50: float | None   # capture → send, seconds
    latency_p95: float | None
    fps: float              # frames sent per second

    def line(self) -> str:
        """One line: counters, fps and capture-to-send latency."""
        ms = lambda v: "-" if v is None else f"{v * 1000:.0f}"      # noqa: E731
        extra = "".join([f" repeated {self.repeated}" if self.repeated else "",
                         f" reconnects {self.reconnects}" if self.reconnects else ""])
        return (f"in {self.frames_in} matted {self.matted} reused {self.reused} dropped {self.dropped} "
                f"sent {self.sent}{extra} | {self.fps:.1f} fps | latency p50 {ms(self.latency_p50)} ms "
                f"p95 {ms(self.latency_p95)} ms")


@dataclass(frozen=True)
class LiveResult:
    """What a finished live job did."""

    stats: LiveStats
    model: str
    outputs: list[str]
    stopped: bool           # ended by Ctrl-C, q, or the duration (not by the end of the input)

    def summary(self) -> str:
        how = "stopped" if self.stopped else "input ended"
        return f"{how} after {self.stats.seconds:.1f} s with {self.model}: {self.stats.line()}"


def live(camera: str | Source | None = None, *, config: str | Path | None = LIVE_PRESET, stats: bool = False,
         duration: float | None = None, quiet: bool = False,
         on_stats: Callable[[LiveStats], None] | None = None, **options: Any) -> LiveResult:
    """Run the live job until the input ends, Ctrl-C, `q` in the preview, or `duration` seconds.

    `camera` is a `--camera` spec (None: the first camera) or an open Source; `options` are LiveConfig
    fields over the `config` preset. `stats` prints the counters once a second (to stderr); `on_stats`
    gets them instead. Raises P3MError on user mistakes (no virtual camera, bad camera, bad option).
    """
    settings = load_live_config(config, **options)
    return run_live(camera, settings, stats=stats, duration=duration, quiet=quiet, on_stats=on_stats)


def run_live(camera: str | Source | None, settings: LiveConfig, *, stats: bool = False,
             duration: float | None = None, quiet: bool = False,
             on_stats: Callable[[LiveStats], None] | None = None) -> LiveResult:
    """Build camera → alpha (+ matting worker) → compositing → faces → outputs and run it live."""
    if duration is not None and duration <= 0:
        raise P3MError(f"duration {duration} is not positive", "give seconds, e.g. --duration 60")
    with contextlib.ExitStack() as stack:
        compositor = stack.enter_context(contextlib.closing(Compositor(settings.background)))  # checked first
        source = camera if isinstance(camera, Source) else stack.enter_context(
            open_camera(camera, size=settings.camera_size, fps=settings.camera_fps,
                        pixel_format=settings.camera_format, backend=settings.camera_backend,
                        timeout_s=settings.camera_timeout))
        sink, preview, names = _open_outputs(stack, settings, source, compositor.transparent)
        matter = stack.enter_context(make_matter(settings.model, weights=settings.weights,
                                                 device=settings.device, precision=settings.precision))
        log.info("model: %s; camera %s %dx%d @ %.4g fps -> %s", matter.describe(), source.path, source.width,
                 source.height, float(source.fps), ", ".join(names))
        matting = MattingStage(matter, infer_size=settings.infer_size, upsample=settings.upsample)
        smoother = TemporalSmoother(strength=settings.smoothing_strength, enabled=settings.smoothing)
        limit_threads(matter)        # after the stages are made: they import torch where they use it
        reuse = AlphaReuse(worker_steps(matting, smoother, compositor), wait_s=settings.alpha_wait_ms / 1000)
        stack.callback(reuse.close)
        stages: list[Stage] = [reuse, compositor]
        if settings.blur_faces:
            faces = FaceBlur(settings.blur_style, settings.face_model)
            stack.callback(faces.close)
            stages.append(faces)
        pipeline = Pipeline(source, stages, sink, policy="live", capacity=settings.queue_size)
        if preview is not None:
            preview.on_quit = pipeline.cancel          # q or Esc in the window
        reuse.should_stop = lambda: pipeline.stopping
        if isinstance(source, LiveSource):
            source.should_stop = lambda: pipeline.stopping
        snapshot = lambda s: _snapshot(s, reuse, sink, source)    # noqa: E731
        report = on_stats or (_print_line if stats else None)
        last_report = [time.perf_counter()]

        def on_frame(s: Stats) -> None:
            if preview is not None:
                preview.show()
            now = time.perf_counter()
            if report is not None and now - last_report[0] >= 1.0:
                last_report[0] = now
                report(snapshot(s))

        timer = threading.Timer(duration, pipeline.cancel) if duration else None
        try:
            with cancel_on_signals(pipeline):
                if timer is not None:
                    timer.daemon = True
                    timer.start()
                final = pipeline.run(on_frame)
        finally:
            if timer is not None:
                timer.cancel()
            if preview is not None:
                preview.destroy()
        result = LiveResult(stats=snapshot(final), model=matter.describe(), outputs=names, stopped=final.cancelled)
    if not quiet:
        log.info("%s", result.summary())
    return result


def _open_outputs(stack: contextlib.ExitStack, settings: LiveConfig, source: Source,
                  transparent: bool) -> tuple[RepeatLast, PreviewSink | None, list[str]]:
    """The sinks a config asks for (the virtual camera when it asks for none), teed, behind RepeatLast."""
    size = dict(width=source.width, height=source.height)
    sinks: list[Sink] = []
    names: list[str] = []
    preview: PreviewSink | None = None
    virtual_cam = settings.virtual_cam or (None if settings.wants_output else "auto")
    if virtual_cam is not None:
        if transparent:
            raise P3MError("a virtual camera cannot show a transparent background",
                           "pick one (-b blur, green, '#RRGGBB', an image), or send the overlay with "
                           "--stream-url tcp://… (or srt://…) or -o overlay.webm")
        vcam = stack.enter_context(VirtualCameraSink(fps=source.fps, device=virtual_cam,
                                                     backend=settings.virtual_cam_backend, **size))
        sinks.append(vcam)
        names.append(f"virtual camera {vcam.path}")
    if settings.preview:
        preview = PreviewSink()
        sinks.append(preview)
        names.append("preview")
    if settings.stream_url:
        stream = StreamSink(settings.stream_url, fps=source.fps, transparent=transparent,
                            bitrate_kbps=settings.stream_bitrate, **size)
        sinks.append(stack.enter_context(BackgroundSink(stream, "stream")))
        names.append(settings.stream_url)
    for path, kind in ((settings.output, "transparent" if transparent else "composite"), (settings.alpha_out, "matte")):
        if path:
            file = open_sink(path, fps=source.fps, time_base=source.time_base, kind=kind, crf=settings.crf,
                             preset=settings.preset, input_path=source.path, **size)
            sinks.append(stack.enter_context(BackgroundSink(file, "record")))
            names.append(path)
    tee = sinks[0] if len(sinks) == 1 else TeeSink(sinks)
    return stack.enter_context(RepeatLast(tee, source.fps)), preview, names


def _snapshot(s: Stats, reuse: AlphaReuse, sink: RepeatLast, source: Source) -> LiveStats:
    return LiveStats(seconds=s.elapsed, frames_in=s.frames_in, matted=reuse.matted, skipped=reuse.skipped,
                     reused=reuse.reused,
                     dropped=s.dropped, sent=s.written, repeated=sink.repeated,
                     reconnects=getattr(source, "reconnects", 0), latency_p50=s.latency_p50,
                     latency_p95=s.latency_p95, fps=s.fps)


def _print_line(stats: LiveStats) -> None:
    print(stats.line(), file=sys.stderr, flush=True)
