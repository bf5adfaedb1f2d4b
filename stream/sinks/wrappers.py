"""Sinks made of sinks: a tee to several outputs, one on its own writer thread, and one that repeats the
last frame while the camera is away (live outputs keep their frame rate)."""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Sequence
from fractions import Fraction

from stream.frames import Frame
from stream.protocols import Sink

log = logging.getLogger(__name__)


class TeeSink(Sink):
    """Several sinks fed the same frames (the main output and a matte, say); counts follow the first.

    `independent` (live): one output failing must not destroy another. The tee remembers which sink failed,
    and `abort()` then removes only that one and finalises the others (a recording is kept when the network
    stream breaks). Without it, or when the failure was elsewhere, `abort()` aborts them all.
    """

    def __init__(self, sinks: Sequence[Sink], *, independent: bool = False) -> None:
        self.sinks = list(sinks)
        self.path = self.sinks[0].path
        self.independent = independent
        self.failed: list[Sink] = []

    @property
    def frames_written(self) -> int:  # type: ignore[override]
        return self.sinks[0].frames_written

    def write(self, frame: Frame) -> None:
        for sink in self.sinks:
            try:
                sink.write(frame)
            except BaseException:
                self.failed.append(sink)
                raise

    def close(self, *, interrupted: bool = False) -> None:
        if self.independent:
            self._close_each(interrupted)
            return
        # The main output (first) is finalised last: if a secondary one (the matte) fails to close, the
        # job failed, and no finished-looking main output is left behind.
        remaining = list(reversed(self.sinks))
        try:
            while remaining:
                remaining[0].close(interrupted=interrupted)
                remaining.pop(0)
        except BaseException:
            for sink in remaining[1:]:
                sink.abort()
            raise

    def _close_each(self, interrupted: bool) -> None:
        """Finalise every output, even after one fails to; then raise the first failure."""
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close(interrupted=interrupted)
            except BaseException as e:  # noqa: BLE001 - raised below, after the others are finalised
                self.failed.append(sink)
                first = first or e
        if first is not None:
            self._log_kept()
            raise first

    def abort(self) -> None:
        if not (self.independent and self.failed):
            for sink in self.sinks:
                sink.abort()
            return
        for sink in self.sinks:
            if any(sink is failed for failed in self.failed):
                sink.abort()
                continue
            try:
                sink.close(interrupted=True)          # the healthy outputs keep what they have
            except Exception:
                log.exception("%s: could not be finalised", sink.path)
                sink.abort()
        self._log_kept()

    def _log_kept(self) -> None:
        failed = ", ".join(sink.path for sink in self.failed)
        for sink in self.sinks:
            if not any(sink is f for f in self.failed) and os.path.isfile(sink.path):     # a recording
                log.warning("%s failed; %s was finalised and kept (%d frames)", failed, sink.path,
                            sink.frames_written)


class BackgroundSink(Sink):
    """Runs `sink` on its own thread behind a one-frame mailbox (the newest frame wins), so a slow encoder or
    network never holds up the virtual camera. `skipped` counts frames it had no time for; its errors come
    back on the next `write` or `close`.
    """

    def __init__(self, sink: Sink, name: str = "writer") -> None:
        self.sink, self.path = sink, sink.path
        self.skipped = 0
        self._cond = threading.Condition()
        self._pending: Frame | None = None
        self._closing = self._done = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"p3m-{name}", daemon=True)
        self._thread.start()

    @property
    def frames_written(self) -> int:  # type: ignore[override]
        return self.sink.frames_written

    def write(self, frame: Frame) -> None:
        with self._cond:
            self._raise()
            if self._pending is not None:
                self.skipped += 1
            self._pending = frame
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                frame, self._pending = self._pending, None
                if frame is None:
                    return
            try:
                self.sink.write(frame)
            except BaseException as e:  # noqa: BLE001 - handed to the pipeline's sink thread
                with self._cond:
                    self._error = e
                return

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    def close(self, *, interrupted: bool = False) -> None:
        if self._done:
            return
        self._done = True
        self._stop()                  # writes the pending frame first
        try:
            with self._cond:
                self._raise()
        except BaseException:
            self.sink.abort()
            raise
        if self.skipped:
            log.info("%s: skipped %d frames to keep up", self.path, self.skipped)
        self.sink.close(interrupted=interrupted)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        with self._cond:
            self._pending = None
        cancel = getattr(self.sink, "cancel", None)
        if cancel is not None:
            cancel()                  # a write blocked on the network returns now, not at its timeout
        self._stop()
        self.sink.abort()


class RepeatLast(Sink):
    """Passes frames to `sink`; when none arrives for two frame intervals (a camera reconnecting), re-sends
    the last one every interval, so apps watching the virtual camera keep a picture. `repeated` counts them.
    """

    def __init__(self, sink: Sink, fps: float | Fraction) -> None:
        self.sink, self.path = sink, sink.path
        self.interval = 1 / float(fps)
        self.repeated = 0
        self._lock = threading.Lock()
        self._last: Frame | None = None
        self._last_sent = 0.0
        self._wait = 2 * self.interval
        self._error: BaseException | None = None
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="p3m-repeat", daemon=True)
        self._thread.start()

    @property
    def frames_written(self) -> int:  # type: ignore[override]
        return self.sink.frames_written

    def write(self, frame: Frame) -> None:
        with self._lock:
            self._raise()
            self.sink.write(frame)
            self._last, self._last_sent, self._wait = frame, time.perf_counter(), 2 * self.interval

    def _run(self) -> None:
        while not self._stop.wait(self.interval / 4):
            with self._lock:
                now = time.perf_counter()
                if self._last is None or now - self._last_sent < self._wait or self._error is not None:
                    continue
                try:
                    self.sink.write(_repeat(self._last, now))
                except BaseException as e:  # noqa: BLE001 - raised on the next write or close
                    self._error = e
                    continue
                self.repeated += 1
                self._last_sent, self._wait = now, self.interval

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self, *, interrupted: bool = False) -> None:
        if self._done:
            return
        self._done = True
        self._stop.set()
        self._thread.join()
        try:
            self._raise()
        except BaseException:
            self.sink.abort()
            raise
        self.sink.close(interrupted=interrupted)

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._stop.set()
        self._thread.join()
        self.sink.abort()


def _repeat(frame: Frame, now: float) -> Frame:
    """`frame` again at time `now`: same pixels, a later pts (encoders need increasing timestamps)."""
    pts = frame.pts
    if pts is not None and frame.time_base:
        pts += max(1, round((now - frame.captured_at) / frame.time_base))
    return dataclasses.replace(frame, pts=pts, extras={**frame.extras, "repeated": True})
