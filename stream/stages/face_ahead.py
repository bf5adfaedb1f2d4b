"""Live: each frame's face check starts as the frame enters the pipeline, on a worker beside its matting and
compositing (the other core), and `FaceBlur.process` waits only for what is left of it (stream/jobs/live.py
draws the threads)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from stream.frames import Frame
from stream.pipeline.queues import POLL_S, Cancelled

R = TypeVar("R")


class CheckAhead(Generic[R]):
    """The first live stage with --blur-faces: `process` hands each frame to the worker thread
    `p3m-face-check` (owned here, joined in `close`), which runs `check(frame)` on the frames strictly in
    order, one at a time; `result(frame)` waits for that frame's result. A frame waits in `process` while
    another one still waits for the worker, so checks never fall behind the camera: the live queue before
    this stage drops the stalest instead. Every wait ends on `should_stop` (Cancelled) or a worker error.
    """

    name = "face-ahead"

    def __init__(self, check: Callable[[Frame], R]) -> None:
        self.check = check
        self.should_stop: Callable[[], bool] = lambda: False
        self._cond = threading.Condition()
        self._next: Frame | None = None               # handed over, not yet taken by the worker
        self._results: dict[int, R] = {}              # by frame index; older ones go when a newer one is taken
        self._error: BaseException | None = None
        self._closing = self._ended = False
        self._thread: threading.Thread | None = None

    def process(self, frame: Frame) -> Frame:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="p3m-face-check", daemon=True)
                self._thread.start()
            self._wait(lambda: self._next is None)
            self._next = frame
            self._cond.notify_all()
        return frame

    def result(self, frame: Frame) -> R:
        """The check of `frame`, once the worker has made it (results of frames dropped on the way go too)."""
        with self._cond:
            self._wait(lambda: frame.index in self._results)
            for index in [i for i in self._results if i < frame.index]:
                del self._results[index]
            return self._results.pop(frame.index)

    def _wait(self, ready: Callable[[], bool]) -> None:
        """Wait on the condition (held) until `ready()`, a worker error, a stop request or the worker's end."""
        while not ready():
            if self._error is not None:
                raise self._error
            if self.should_stop() or self._ended:
                raise Cancelled
            self._cond.wait(POLL_S)

    def _work(self) -> None:
        try:
            while True:
                with self._cond:
                    while self._next is None and not self._closing:
                        self._cond.wait()
                    if self._next is None:        # closing, and the last frame handed over is checked
                        return
                    frame = self._next
                    self._next = None
                    self._cond.notify_all()
                result = self.check(frame)
                with self._cond:
                    self._results[frame.index] = result
                    self._cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - raised where a frame waits for it
            with self._cond:
                self._error = e
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def close(self) -> None:
        """Check what was handed over (a frame on its way still waits for it), then end the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
