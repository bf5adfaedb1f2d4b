"""The local engine: a process pool on this machine (concurrent.futures), each worker keeping its own model.

Stopping: workers ignore SIGINT between videos (a terminal's Ctrl-C reaches the whole process group, and
the batch decides), and each job maps it to an abort that removes the partial output. `cancel()` sets an
event every worker watches; a worker that sees it signals itself until its job has stopped.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.synchronize import Event
from pathlib import Path

from model.errors import P3MError
from model.matters.auto import choose
from stream.jobs.batch.inputs import Video
from stream.jobs.batch.report import VideoResult
from stream.jobs.batch.worker import cut_one
from stream.jobs.config import CutoutConfig

log = logging.getLogger(__name__)
ATTEMPTS = 2          # a video whose worker process died (a crash, the OOM killer) is tried once more
STOP_RESEND_S = 0.5   # a stopping worker signals itself this often, until its job is past the model load

_stop: Event | None = None       # in a worker: set when the batch is stopping


def local_gpus(settings: CutoutConfig) -> list[str]:
    """The CUDA devices this machine's workers share: none for a CPU model or `--device cpu`."""
    if settings.model == "auto":
        p3mnet = choose(Path(settings.weights) if settings.weights else None)[0] == "p3mnet"
    else:
        p3mnet = settings.model.startswith("p3mnet")        # p3mnet and its variants p3mnet-r34, ...
    if settings.device == "cpu" or not p3mnet:
        return []
    import torch  # deferred: only a P3M-Net batch needs it here

    count = torch.cuda.device_count()
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return (visible or [str(i) for i in range(count)])[:count]


def default_workers(gpus: list[str], gpus_per_video: float | None, cpus_per_video: int) -> int:
    """Jobs this machine runs side by side: on CUDA one per GPU (more for a fraction), else one per
    `cpus_per_video` cores (a job's decode, model, upsampling and encode threads keep about two busy)."""
    if gpus:
        return max(1, int(len(gpus) / (gpus_per_video or 1.0) + 1e-9))
    return max(1, (os.cpu_count() or 1) // max(cpus_per_video, 1))


class LocalPool:
    """`workers` processes cutting the videos submitted; `wait` hands back results as they finish."""

    engine = "local"

    def __init__(self, settings: CutoutConfig, workers: int, gpus: list[str] | None = None) -> None:
        self.settings, self.workers, self.gpus = settings, workers, list(gpus or [])
        self._context = multiprocessing.get_context("forkserver")   # no fork: the parent may hold CUDA or threads
        self._stop = self._context.Event()
        self._kill = self._context.Event()
        self._pool: ProcessPoolExecutor | None = None
        self._running: dict[Future, Video] = {}
        self._attempts: dict[str, int] = {}

    def __enter__(self) -> LocalPool:
        self._pool = self._new_pool()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _new_pool(self) -> ProcessPoolExecutor:
        slots = self._context.Value("i", 0)
        return ProcessPoolExecutor(self.workers, mp_context=self._context, initializer=_start_worker,
                                   initargs=(self._stop, self._kill, slots, tuple(self.gpus)))

    def submit(self, videos: list[Video]) -> None:
        for video in videos:
            self._attempts[video.input] = self._attempts.get(video.input, 0) + 1
            self._running[self._pool.submit(_cut, video, self.settings)] = video

    @property
    def pending(self) -> bool:
        return bool(self._running)

    def wait(self, timeout: float) -> list[VideoResult]:
        """The results that finish within `timeout` seconds. Raises ModelError when the model does not load."""
        done, _ = wait(self._running, timeout, return_when=FIRST_COMPLETED)
        results, broken = [], False
        for future in done:
            video = self._running.pop(future)
            if future.cancelled():                 # never started (cancel): the batch reports it as not run
                continue
            try:
                results.append(future.result())
            except BrokenProcessPool:
                broken = True
                self._running[future] = video       # put back: _recover sorts them out
        if broken and self._stop.is_set():          # stopping anyway: nothing goes to a fresh pool
            self._running.clear()
        elif broken:
            results += self._recover()
        return results

    def _recover(self) -> list[VideoResult]:
        """A worker process died and took the pool with it: its results so far are kept, the unfinished
        videos go to a fresh pool, those tried `ATTEMPTS` times fail."""
        results, again = [], []
        for future, video in self._running.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                results.append(future.result())
            elif self._attempts[video.input] >= ATTEMPTS:
                results.append(VideoResult(video.input, video.output, "failed",
                                           error=f"its worker process died while cutting it, {ATTEMPTS} times"))
            else:
                again.append(video)
        self._running.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        log.warning("a worker process died; %d video(s) go to a fresh pool", len(again))
        self._pool = self._new_pool()
        self.submit(again)
        return results

    def cancel(self) -> list[VideoResult]:
        """Stop: videos not started are not run, running ones stop and remove their partial outputs; returns
        the results of those that finished or stopped. A second Ctrl-C ends the workers at once (the hidden
        partial files of the videos they were cutting may then remain)."""
        self._stop.set()
        for future in self._running:
            future.cancel()
        results = []
        try:
            while self._running:
                results += self.wait(STOP_RESEND_S)
        except KeyboardInterrupt:
            self._kill.set()
            raise
        return results


def _start_worker(stop: Event, kill: Event, slots: multiprocessing.Value, gpus: tuple[str, ...]) -> None:
    """A worker's set-up: SIGINT ignored between jobs, its GPU, warnings on stderr, the stop watcher."""
    global _stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if gpus:
        with slots.get_lock():
            slot, slots.value = slots.value, slots.value + 1
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]     # before anything initialises CUDA
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    _stop = stop
    threading.Thread(target=_watch, args=(stop, kill), name="p3m-batch-stop", daemon=True).start()


def _watch(stop: Event, kill: Event) -> None:
    """Once the batch stops, SIGINT to this process every STOP_RESEND_S: a running job aborts (its handler
    is in place once its pipeline runs); between jobs it is ignored. `kill`: exit at once."""
    stop.wait()
    while True:
        os.kill(os.getpid(), signal.SIGINT)
        if kill.wait(STOP_RESEND_S):
            os._exit(130)


def _cut(video: Video, settings: CutoutConfig) -> VideoResult:
    if _stop is not None and _stop.is_set():
        return VideoResult(video.input, video.output, "cancelled")
    return cut_one(video, settings)


def check_gpus(gpus: list[str], gpus_per_video: float | None) -> None:
    """GPUs asked of a machine without any: say so now."""
    if gpus_per_video and not gpus:
        raise P3MError(f"--gpus-per-video {gpus_per_video:g} asks for GPUs, and no CUDA GPU is used here",
                       "drop --gpus-per-video, or give P3M-Net weights on a machine with CUDA")
