"""The live matting step: a worker thread mattes the newest frame while every frame leaves with the newest
alpha there is (stream/jobs/live.py draws the threads)."""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

import cv2

from stream.frames import Frame
from stream.pipeline.queues import POLL_S, Cancelled
from stream.protocols import Stage

log = logging.getLogger(__name__)


class AlphaReuse:
    """The live matting step: `process` offers each frame to a matting worker thread (a one-frame mailbox,
    newest wins) and leaves with the newest alpha the worker has published. When the model keeps up (its
    recent time per frame within the wait budget: `wait_s`, at most the camera's frame interval `interval_s`:
    a slower model cannot keep up, however long a frame waits) the frame
    waits for its own alpha, up to that budget; else, or when the wait runs out, it leaves at once with an
    older frame's (`reused`; `reuse_ages` counts them by how many frames older). The first frame waits for the
    first alpha: nothing leaves unmatted.

    The worker runs `stages` (matting and smoothing, perhaps compositing: stream/jobs/assembly.py's
    `plan_stages(..., live=True)`) and closes them on its own thread. A frame that gets its own alpha also
    gets the worker's `output` when it made one.
    """

    name = "alpha"

    def __init__(self, stages: Sequence[Stage], wait_s: float = 0.04, interval_s: float | None = None) -> None:
        self.stages = list(stages)
        self.budget = wait_s if interval_s is None else min(wait_s, interval_s)
        self.matted = self.reused = self.skipped = 0
        self.reuse_ages: Counter[int] = Counter()   # frames sent with an older frame's alpha, by its age in frames
        self.should_stop: Callable[[], bool] = lambda: False
        self._cond = threading.Condition()
        self._mailbox: Frame | None = None
        self._closing = False
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
            self._cond.notify_all()
            if self._alpha is None:
                self._wait(lambda: self._alpha is not None, None)
            elif self._took is not None and self._took <= self.budget:   # it keeps up: this frame's own alpha
                self._wait(lambda: self._alpha_index >= frame.index, self.budget)
            alpha, source, output = self._alpha, self._alpha_index, self._output
        if alpha.shape != frame.image.shape[:2]:      # the camera came back at another size
            alpha = cv2.resize(alpha, (frame.image.shape[1], frame.image.shape[0]), interpolation=cv2.INTER_LINEAR)
        frame.alpha = alpha
        frame.extras["alpha_from"] = source
        if source != frame.index:
            self.reused += 1
            with self._cond:                          # read by the stats line's thread (`ages`)
                self.reuse_ages[frame.index - source] += 1
        elif output is not None:
            frame.output = output                     # its own composite: the compositor passes it on
        return frame

    def ages(self) -> tuple[tuple[int, int], ...]:
        """(frames older, count) of the reused alphas so far, youngest first."""
        with self._cond:
            return tuple(sorted(self.reuse_ages.items()))

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
                    job, self._mailbox = self._mailbox, None
                start = time.perf_counter()
                for stage in self.stages:
                    job = stage.process(job)
                took = time.perf_counter() - start
                with self._cond:
                    self._alpha, self._alpha_index, self._output = job.alpha, job.index, job.output
                    self.matted += 1
                    # The first call includes the model's warm-up: start the average at the second.
                    self._took = took if self.matted <= 2 else 0.8 * self._took + 0.2 * took
                    self._cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - re-raised in the compose path by process()
            with self._cond:
                self._error = e
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
