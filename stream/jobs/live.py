"""The live job: a webcam in, a composited stream out (virtual camera, preview, recording, network stream),
with low and bounded latency. Same Pipeline and stages as the offline job; only the queue policy and the
ends differ.

Threads and who owns them (→ is a LatestQueue of `queue_size` 1-2 frames that drops the stalest):

    p3m-source   camera capture (paced)   → p3m-face-ahead (with --blur-faces) hands each frame to
                                             └─ p3m-face-check (owned by CheckAhead): the frame's face check,
                                                in order, one at a time, while the frame goes on being matted
                                          → p3m-alpha   pairs each frame with the newest alpha
                                             ├─ p3m-matting (owned by AlphaReuse): matting + smoothing on the
                                             │  newest frame offered (one-frame mailbox), publishes its alpha
                                             │  (on CUDA with a background that is not a video: its composite too)
                                          → p3m-Compositor → p3m-faces (waits for the frame's check, hides)
                                          → p3m-sink: RepeatLast(Tee[virtual camera, preview, stream*, recording*])
                                             (* on their own threads: BackgroundSink)
    caller       Pipeline.run: preview window, the once-a-second stats line

The compose path never waits for a slow model: every camera frame leaves with the newest alpha there is
(`reused` when it belongs to an older frame; the stats say how much older). When the model keeps up (its time
per frame within `alpha_wait_ms` and the camera's frame interval), a frame waits that long for its own alpha.
Nothing is sent before the first alpha exists, nor before its own face check (privacy): a frame waits at
p3m-face-ahead while another still waits for the checker, so checks never fall behind the camera (the live queue
before it drops the stalest instead). A frame that got its own alpha from a CUDA worker also
gets the worker's composite, made on the device where the frame already is, and the compositor passes it on
(sparing the compose path the CPU blend).
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.errors import P3MError
from stream.jobs.assembly import Assembly
from stream.jobs.config import LIVE_PRESET, LiveConfig, load_live_config
from stream.pipeline.runner import Pipeline, Stats, cancel_on_signals
from stream.protocols import Sink, Source, Stage
from stream.sinks.files import open_sink
from stream.sinks.live import PreviewSink, StreamSink, VirtualCameraSink
from stream.sinks.paths import Confirm
from stream.sinks.wrappers import BackgroundSink, RepeatLast, TeeSink
from stream.sources.camera import LiveSource, open_camera
from stream.stages.alpha_reuse import AlphaReuse
from stream.stages.faces import FaceBlur

log = logging.getLogger(__name__)


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
    faces_hidden: int | None = None   # frames that left with a face hidden (None: --blur-faces off)
    faces_covered: int = 0  # frames fully covered because their face check failed
    # Outputs on their own writer thread (a stream, a recording) that took fewer frames than were sent:
    # (name, frames that went out there, frames skipped to keep up).
    behind: tuple[tuple[str, int, int], ...] = ()
    reuse_ages: tuple[tuple[int, int], ...] = ()   # (frames older, count) of the `reused` frames' alphas

    def line(self) -> str:
        """One line: counters, fps and capture-to-send latency."""
        ms = lambda v: "-" if v is None else f"{v * 1000:.0f}"      # noqa: E731
        extra = "".join([f" repeated {self.repeated}" if self.repeated else "",
                         f" faces hidden {self.faces_hidden}" if self.faces_hidden is not None else "",
                         f" covered {self.faces_covered}" if self.faces_covered else "",
                         f" reconnects {self.reconnects}" if self.reconnects else ""])
        ages = ", ".join(f"{count} by {age}" for age, count in self.reuse_ages)
        reused = f"{self.reused} ({ages} frame{'s' if self.reuse_ages[-1][0] > 1 else ''} older)" if ages else "0"
        return (f"in {self.frames_in} matted {self.matted} reused {reused} dropped {self.dropped} "
                f"sent {self.sent}{extra} | {self.fps:.1f} fps | latency p50 {ms(self.latency_p50)} ms "
                f"p95 {ms(self.latency_p95)} ms"
                + "".join(f" | {name}: {out} out, {skipped} skipped" for name, out, skipped in self.behind))


@dataclass(frozen=True)
class LiveResult:
    """What a finished live job did."""

    stats: LiveStats
    model: str
    outputs: list[str]
    stopped: bool           # ended by Ctrl-C, q, or the duration (not by the end of the input)
    interrupted: bool = False   # ended by Ctrl-C or SIGTERM: the CLI exits 130 (after finalising the outputs)

    def summary(self) -> str:
        how = "stopped" if self.stopped else "input ended"
        return f"{how} after {self.stats.seconds:.1f} s with {self.model}: {self.stats.line()}"


def live(camera: str | Source | None = None, *, config: str | Path | None = LIVE_PRESET, stats: bool = False,
         duration: float | None = None, quiet: bool = False,
         on_stats: Callable[[LiveStats], None] | None = None, overwrite: bool = False,
         confirm: Confirm | None = None, **options: Any) -> LiveResult:
    """Run the live job until the input ends, Ctrl-C, `q` in the preview, or `duration` seconds.

    `camera` is a `--camera` spec (None: the first camera) or an open Source; `options` are LiveConfig
    fields over the `config` preset. `stats` prints the counters once a second (to stderr); `on_stats`
    gets them instead. Raises P3MError on user mistakes (no virtual camera, bad camera, bad option).
    """
    settings = load_live_config(config, **options)
    return run_live(camera, settings, stats=stats, duration=duration, quiet=quiet, on_stats=on_stats,
                    overwrite=overwrite, confirm=confirm)


def run_live(camera: str | Source | None, settings: LiveConfig, *, stats: bool = False,
             duration: float | None = None, quiet: bool = False,
             on_stats: Callable[[LiveStats], None] | None = None, overwrite: bool = False,
             confirm: Confirm | None = None) -> LiveResult:
    """Build camera → (face check ahead →) alpha (+ matting worker) → compositing → (faces →) outputs and run it
    live."""
    if duration is not None and duration <= 0:
        raise P3MError(f"duration {duration} is not positive", "give seconds, e.g. --duration 60")
    with contextlib.ExitStack() as stack:
        assembly = Assembly(stack, settings)       # the background is checked before anything opens
        transparent = assembly.compositor.transparent
        virtual_cam = _virtual_camera(settings, transparent)
        source = camera if isinstance(camera, Source) else stack.enter_context(
            open_camera(camera, size=settings.camera_size, fps=settings.camera_fps,
                        pixel_format=settings.camera_format, backend=settings.camera_backend,
                        timeout_s=settings.camera_timeout))
        if settings.output or settings.alpha_out:   # the recordings: paths.py's rules, as `cutout`'s outputs
            assembly.reserve_outputs(settings.output, source, overwrite=overwrite, confirm=confirm)
        assembly.load()                            # before the outputs: a bad infer_size opens none
        sink, preview, names = _open_outputs(stack, settings, source, transparent, virtual_cam)
        log.info("camera %s %dx%d @ %.4g fps -> %s", source.path, source.width, source.height, float(source.fps),
                 ", ".join(names))
        reuse = AlphaReuse(assembly.stages(live=True), wait_s=settings.alpha_wait_ms / 1000,
                           interval_s=1 / float(source.fps))
        stack.callback(reuse.close)
        faces = assembly.face_blur(live=True)
        # The face check starts as a frame enters, beside its matting, and the hiding waits for it at the end.
        ahead = [assembly.faces.check_ahead()] if assembly.faces is not None else []
        stages: list[Stage] = [*ahead, reuse, assembly.compositor, *faces]
        assembly.compositor.wait_ready()
        pipeline = Pipeline(source, stages, sink, policy="live", capacity=settings.queue_size)
        if preview is not None:
            preview.on_quit = pipeline.cancel          # q or Esc in the window
        reuse.should_stop = lambda: pipeline.stopping
        if isinstance(source, LiveSource):
            source.should_stop = lambda: pipeline.stopping
        snapshot = lambda s: _snapshot(s, reuse, sink, source, assembly.faces)    # noqa: E731
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
        result = LiveResult(stats=snapshot(final), model=assembly.matter.describe(), outputs=names,
                            stopped=final.cancelled, interrupted=final.interrupted)
    if not quiet:
        log.info("%s", result.summary())
    return result


def _virtual_camera(settings: LiveConfig, transparent: bool) -> str | None:
    """The virtual camera a config asks for (`auto` when it asks for no output at all), or None; refused
    with a transparent background, before anything opens."""
    virtual_cam = settings.virtual_cam or (None if settings.wants_output else "auto")
    if virtual_cam is not None and transparent:
        raise P3MError("a virtual camera cannot show a transparent background",
                       "pick one (-b blur, green, '#RRGGBB', an image), or send the overlay with "
                       "--stream-url tcp://… (or srt://…) or -o overlay.webm")
    return virtual_cam


def _open_outputs(stack: contextlib.ExitStack, settings: LiveConfig, source: Source, transparent: bool,
                  virtual_cam: str | None) -> tuple[RepeatLast, PreviewSink | None, list[str]]:
    """The sinks a config asks for (`virtual_cam`: `_virtual_camera`'s), teed, behind RepeatLast."""
    size = dict(width=source.width, height=source.height)
    sinks: list[Sink] = []
    names: list[str] = []
    preview: PreviewSink | None = None
    if virtual_cam is not None:
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
                             preset=settings.preset, input_path=source.path, odd_size=settings.odd_size, **size)
            sinks.append(stack.enter_context(BackgroundSink(file, "record")))
            names.append(path)
    # independent: a broken stream removes nothing else; the recording is finalised and kept.
    tee = sinks[0] if len(sinks) == 1 else TeeSink(sinks, independent=True)
    return stack.enter_context(RepeatLast(tee, source.fps)), preview, names


def _snapshot(s: Stats, reuse: AlphaReuse, sink: RepeatLast, source: Source, faces: FaceBlur | None = None
              ) -> LiveStats:
    return LiveStats(seconds=s.elapsed, frames_in=s.frames_in, matted=reuse.matted, skipped=reuse.skipped,
                     reused=reuse.reused,
                     dropped=s.dropped, sent=s.written, repeated=sink.repeated,
                     reconnects=getattr(source, "reconnects", 0), latency_p50=s.latency_p50,
                     latency_p95=s.latency_p95, fps=s.fps, behind=_behind(sink),
                     reuse_ages=reuse.ages(), faces_hidden=None if faces is None else faces.frames_hidden,
                     faces_covered=0 if faces is None else faces.frames_covered)


def _behind(sink: RepeatLast) -> tuple[tuple[str, int, int], ...]:
    """The writer-thread outputs that skipped frames: what went out there is theirs to count, not `sent`."""
    outputs = sink.sink.sinks if isinstance(sink.sink, TeeSink) else [sink.sink]
    return tuple((out.path, out.frames_written, out.skipped) for out in outputs
                 if isinstance(out, BackgroundSink) and out.skipped)


def _print_line(stats: LiveStats) -> None:
    print(stats.line(), file=sys.stderr, flush=True)
