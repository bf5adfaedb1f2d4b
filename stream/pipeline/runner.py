"""Threads joined by bounded queues: source → stage 1 → … → stage k → sink.

Who owns what:
- one thread iterates the source (decode) and puts frames into the first queue;
- one thread per stage: get, `stage.process(frame)`, put; it calls `stage.close()` when it ends, so a stage
  releases its resources on the thread that used them;
- one thread writes to the sink and finalises it: `close()` at end of stream, `close(interrupted=True)`
  after `cancel()`, `abort()` (partial output removed) after an error anywhere;
- the caller's thread runs `run()`: it starts the others, calls `on_frame`, and joins them all before it
  returns or raises. The caller owns (opens and closes) the source and sink objects themselves.

Queue policy is the only difference between modes: offline queues block (nothing is lost, memory is
bounded by their capacity); live queues hold the newest 1-2 frames and drop the stalest (`LatestQueue`).
Offline, a queue beside a batching stage holds at least two of its batches: the stage hands a whole batch
on, and gathers the next, without waiting for its neighbour to take or make frames one at a time.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from model.errors import P3MError
from stream.frames import Frame
from stream.pipeline.memory import reuse_freed_memory
from stream.pipeline.queues import END, POLL_S, BlockingQueue, Cancelled, LatestQueue
from stream.protocols import Sink, Stage

log = logging.getLogger(__name__)
Policy = Literal["offline", "live"]
T = TypeVar("T")
LATENCY_WINDOW = 1000    # latencies kept for p50/p95 (a ring: long live sessions stay bounded)


class StageError(RuntimeError):
    """A stage, the source or the sink failed; the original exception is `__cause__`."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage} failed: {type(error).__name__}: {error}")
        self.stage = stage


class Aborted(P3MError):
    """The user asked twice to stop: the pipeline stopped without finalising, and the output was removed."""


@dataclass
class Stats:
    """Counters of one run; `on_frame` gets the live object (read it, do not keep it across calls)."""

    frames_in: int = 0                 # produced by the source
    processed: int = 0                 # out of the last stage
    dropped: int = 0                   # replaced in live queues (always 0 offline)
    written: int = 0                   # accepted by the sink
    per_stage: dict[str, int] = field(default_factory=dict)
    busy: dict[str, float] = field(default_factory=dict)    # seconds each thread spent working (not waiting)
    queue_peaks: dict[str, int] = field(default_factory=dict)
    latencies: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATENCY_WINDOW))
    elapsed: float = 0.0               # seconds since run() started
    cancelled: bool = False
    interrupted: bool = False          # a signal (Ctrl-C, SIGTERM) stopped it: the CLI exits 130
    frame_count: int | None = None     # the source's estimate, for progress bars

    def latency(self, q: float) -> float | None:
        """The q-quantile (0-1) of capture→write latency in seconds over the recent window."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def latency_p50(self) -> float | None:
        return self.latency(0.50)

    @property
    def latency_p95(self) -> float | None:
        return self.latency(0.95)

    @property
    def fps(self) -> float:
        """Frames written per second of wall time."""
        return self.written / self.elapsed if self.elapsed > 0 else 0.0


class Pipeline:
    """source → stages → sink on threads; `run()` drives it to the end, `cancel()` stops it early."""

    def __init__(self, source: Iterable[Frame], stages: Sequence[Stage], sink: Sink, *,
                 policy: Policy = "offline", capacity: int | None = None) -> None:
        if policy not in ("offline", "live"):
            raise ValueError(f"policy must be 'offline' or 'live', not {policy!r}")
        self.source, self.stages, self.sink, self.policy = source, list(stages), sink, policy
        self.capacity = capacity or (4 if policy == "offline" else 2)
        self.names = _unique([_name(stage) for stage in self.stages])
        self.stats = Stats(per_stage={name: 0 for name in self.names},
                           busy={name: 0.0 for name in ["source", *self.names, "sink"]},
                           frame_count=getattr(source, "frame_count", None))
        self._stop = threading.Event()
        self._cancelled = threading.Event()
        self._error: tuple[str, BaseException] | None = None
        self._error_lock = threading.Lock()
        self._progress = threading.Condition()
        queue_type = BlockingQueue if policy == "offline" else LatestQueue
        targets = self.names + ["sink"]
        self.queues = [queue_type(f"to {t}", self._queue_capacity(i), self._stop) for i, t in enumerate(targets)]
        self._started = False
        self._reported = 0             # stats.written at the last on_frame call
        self.signalled = False         # set by cancel_on_signals
        self.sink_state: str | None = None     # "closed", "interrupted" (finalised, kept) or "aborted" (removed)
        for stage in self.stages:
            if hasattr(stage, "should_stop"):  # a stage that works long between two frames looks at it meanwhile
                stage.should_stop = lambda: self._stop.is_set()

    def _queue_capacity(self, i: int) -> int:
        """Frames the queue into stage `i` (or the sink) holds: `capacity`, offline at least two batches of
        the stage before it and of the stage after it."""
        if self.policy != "offline":
            return self.capacity
        beside = self.stages[max(i - 1, 0):i + 1]
        return max([self.capacity, *(2 * getattr(stage, "batch_size", 1) for stage in beside)])

    def cancel(self) -> None:
        """Stop early (thread-safe, signal-safe): the sink keeps and finalises what was written."""
        self._cancelled.set()
        self._stop.set()

    def abort(self) -> None:
        """Stop without finalising (thread-safe, signal-safe): the sink removes its partial output and
        `run()` raises Aborted once every thread has stopped. Once the sink has finalised its output (a first
        Ctrl-C), nothing is removed: the threads are only told to stop, and `run()` reports the kept output."""
        if self.sink_state is not None:
            self._stop.set()
            return
        self._fail("user", Aborted("aborted: the partial output was removed",
                                   "a single Ctrl-C stops cleanly and keeps the frames done so far"))

    @property
    def cancelled(self) -> bool:
        """True once `cancel()` was called."""
        return self._cancelled.is_set()

    @property
    def stopping(self) -> bool:
        """True once the threads were told to stop (cancel or an error): sources and stages that wait
        (a camera reconnecting, a live stage waiting for its worker) poll it to stop waiting."""
        return self._stop.is_set()

    def run(self, on_frame: Callable[[Stats], None] | None = None) -> Stats:
        """Run to the end of the source (or `cancel()`); `on_frame(stats)` runs in this thread as frames
        are written (several may be coalesced into one call). Raises StageError naming the failed part.
        """
        if self._started:
            raise RuntimeError("a Pipeline runs once; build a new one")
        self._started = True
        reuse_freed_memory()         # frame-sized buffers come back from the heap, not as fresh pages
        start = time.perf_counter()
        threads = [threading.Thread(target=self._guard, args=("source", self._read_source), name="p3m-source")]
        for i, (name, stage) in enumerate(zip(self.names, self.stages)):
            threads.append(threading.Thread(target=self._guard, args=(name, self._run_stage, i, stage),
                                            name=f"p3m-{name}"))
        threads.append(threading.Thread(target=self._guard, args=("sink", self._write_sink), name="p3m-sink"))
        for thread in threads:
            thread.daemon = True       # never keep the interpreter alive; run() joins them all anyway
            thread.start()
        interrupted = False
        try:
            self._supervise(threads, on_frame, start)
        except KeyboardInterrupt:      # no SIGINT handler installed: behave like cancel(), then re-raise
            interrupted = True
            self.cancel()
        finally:
            self._join(threads)
            self._refresh(start)
        if interrupted:
            raise KeyboardInterrupt
        if self._error is not None and not (isinstance(self._error[1], Aborted) and self.sink_state != "aborted"):
            name, error = self._error
            if isinstance(error, P3MError):        # user-caused: keep the type the CLI prints cleanly
                error.add_note(f"(in pipeline part '{name}')")
                raise error
            raise StageError(name, error) from error
        if on_frame is not None and self.stats.written != self._reported:
            self._reported = self.stats.written
            on_frame(self.stats)                   # the last frames (or the state after cancel)
        return self.stats

    def _supervise(self, threads: list[threading.Thread], on_frame: Callable[[Stats], None] | None,
                   start: float) -> None:
        seen = 0
        while any(t.is_alive() for t in threads):
            with self._progress:
                if self.stats.written == seen:
                    self._progress.wait(POLL_S)
            seen = self.stats.written
            self._refresh(start)
            if on_frame is not None and seen != self._reported and not self._stop.is_set():
                self._reported = seen
                try:
                    on_frame(self.stats)
                except Exception as e:     # a caller's bug still stops the threads and cleans up
                    self._fail("on_frame", e)

    def _join(self, threads: list[threading.Thread]) -> None:
        waited = 0.0
        for thread in threads:
            while thread.is_alive():
                thread.join(1.0)
                waited += 1.0
                if thread.is_alive() and waited % 5 == 0:
                    log.warning("waiting for %s to finish its current frame", thread.name)

    def _refresh(self, start: float) -> None:
        self.stats.elapsed = time.perf_counter() - start
        self.stats.dropped = sum(q.dropped for q in self.queues)
        self.stats.queue_peaks = {q.name: q.peak for q in self.queues}
        self.stats.cancelled = self._cancelled.is_set() or self.sink_state == "interrupted"
        self.stats.interrupted = self.signalled

    # --- the threads -------------------------------------------------------------------------------------

    def _guard(self, name: str, body: Callable[..., None], *args: object) -> None:
        try:
            body(*args)
        except Cancelled:
            pass
        except BaseException as e:  # noqa: BLE001 - reported by run() in the caller's thread
            self._fail(name, e)

    def _fail(self, name: str, error: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = (name, error)
        self._stop.set()

    def _read_source(self) -> None:
        first = self.queues[0]
        frames = iter(self.source)
        try:
            while True:
                frame = self._timed("source", next, frames, END)
                if frame is END:
                    break
                if self._stop.is_set():
                    raise Cancelled
                self.stats.frames_in += 1
                first.put(frame)
        finally:
            close = getattr(frames, "close", None)      # end the decode generator on this thread
            if close is not None:
                close()
        first.put(END)

    def _run_stage(self, i: int, stage: Stage) -> None:
        inbox, outbox, name = self.queues[i], self.queues[i + 1], self.names[i]
        last = i == len(self.stages) - 1
        offline = self.policy == "offline"
        batch = getattr(stage, "batch_size", 1) if offline else 1
        flush = getattr(stage, "flush", None) if offline else None    # then process_batch even at batch 1
        try:
            while (frame := inbox.get()) is not END:
                if self._stop.is_set():
                    raise Cancelled
                if batch > 1 or flush is not None:   # this frame and up to batch - 1 more (fewer at the end)
                    done = self._timed(name, stage.process_batch, [frame, *inbox.get_more(batch - 1)])
                else:
                    done = [self._timed(name, stage.process, frame)]
                self._pass_on(name, done, outbox, last)
            if flush is not None:            # frames the stage still held: the end of the stream is here
                self._pass_on(name, self._timed(name, flush), outbox, last)
        except BaseException:
            _close_quietly(stage)
            raise
        close = getattr(stage, "close", None)
        if close is not None:
            close()                  # before END: a failing close() must still stop the sink from keeping the file
        outbox.put(END)

    def _timed(self, name: str, fn: Callable[..., T], *args: object) -> T:
        """`fn(*args)`, its time added to thread `name`'s busy seconds (work, not waiting on a queue)."""
        started = time.perf_counter()
        result = fn(*args)
        self.stats.busy[name] += time.perf_counter() - started
        return result

    def _pass_on(self, name: str, frames: list[Frame], outbox: BlockingQueue, last: bool) -> None:
        for frame in frames:
            self.stats.per_stage[name] += 1
            if last:
                self.stats.processed += 1
            outbox.put(frame)

    def _write_sink(self) -> None:
        inbox = self.queues[-1]
        try:
            while (frame := inbox.get()) is not END:
                if self._stop.is_set():
                    raise Cancelled
                self._timed("sink", self.sink.write, frame)
                self.stats.latencies.append(time.perf_counter() - frame.captured_at)
                with self._progress:
                    self.stats.written += 1
                    self._progress.notify_all()
        except Cancelled:
            pass
        except BaseException:
            self.sink_state = "aborted"
            self.sink.abort()
            raise
        if self._error is not None:
            self.sink_state = "aborted"
            self.sink.abort()               # something upstream failed: leave no partial output
            return
        self.sink_state = "closing"         # from here a second Ctrl-C no longer removes the output
        try:
            if self._cancelled.is_set():
                self.sink.close(interrupted=True)
            else:
                self.sink.close()
        except BaseException:
            self.sink_state = "aborted"     # a sink whose close fails removes its output
            raise
        self.sink_state = "interrupted" if self._cancelled.is_set() else "closed"


@contextlib.contextmanager
def cancel_on_signals(pipeline: Pipeline, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM), *,
                      keep: bool = True) -> Iterator[None]:
    """Map SIGINT/SIGTERM to `pipeline.cancel()` while inside (main thread only); a second Ctrl-C aborts.
    `keep=False`: the first one aborts (the partial output is removed), for callers that want whole outputs."""
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def handler(signum: int, _frame: object) -> None:
        pipeline.signalled = True
        if pipeline.sink_state is not None:    # the output is already finalised: say so, remove nothing
            log.warning("stopping: the output is already finalised; waiting for the threads to end")
            pipeline.abort()
            return
        if pipeline.cancelled or not keep:     # impatient user: stop now, but still let every thread finish
            log.warning("aborting: the partial output will be removed")
            pipeline.abort()
            return
        log.warning("interrupted: finishing the frames written so far (Ctrl-C again to abort)")
        pipeline.cancel()

    for sig in signals:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _close_quietly(stage: object) -> None:
    """Close a stage while another error is on its way up (that error is the one to report)."""
    close = getattr(stage, "close", None)
    if close is not None:
        try:
            close()
        except Exception:
            log.exception("closing %s after an error failed too", _name(stage))


def _name(stage: object) -> str:
    return str(getattr(stage, "name", None) or type(stage).__name__)


def _unique(names: list[str]) -> list[str]:
    seen: collections.Counter[str] = collections.Counter(names)
    counts: collections.Counter[str] = collections.Counter()
    out = []
    for name in names:
        counts[name] += 1
        out.append(f"{name}#{counts[name]}" if seen[name] > 1 else name)
    return out
