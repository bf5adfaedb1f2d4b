"""The Ray engine: one plain Ray task per video (taking paths, returning a VideoResult), on the cluster at
`address` or on a local Ray started for the batch; results come back as they finish (`ray.wait`).

Every node must see the input and output paths at the same place (a shared filesystem) and have p3m-stream
installed. Ray re-runs a task whose worker process died (`max_retries`); an error a job raises is its
video's result, never retried.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from typing import Any

from model.errors import P3MError
from stream.jobs.batch.inputs import Video
from stream.jobs.batch.report import VideoResult
from stream.jobs.batch.worker import ModelError, cut_one
from stream.jobs.config import CutoutConfig

log = logging.getLogger(__name__)
MAX_RETRIES = 2       # re-runs of a video whose worker died (a crash, the OOM killer, a lost node)
STOP_WAIT_S = 0.5


def import_ray() -> Any:
    """The `ray` module, or a P3MError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise P3MError("the Ray engine needs Ray, which is not installed",
                       'pip install "p3m-stream[ray]" (or use --engine local)') from None
    return ray


class RayTasks:
    """Videos as Ray tasks of `cpus_per_video` CPUs and `gpus_per_video` GPUs each; `wait` hands back
    results as they finish."""

    engine = "ray"

    def __init__(self, settings: CutoutConfig, address: str | None, cpus_per_video: float,
                 gpus_per_video: float) -> None:
        self.settings, self.cpus, self.gpus = settings, cpus_per_video, gpus_per_video
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.workers = 0
        self._ray: Any = None
        self._started = False
        self._running: dict[Any, Video] = {}

    def __enter__(self) -> RayTasks:
        if (self.address is None or _on_loopback(self.address)) and "ray" not in sys.modules:
            # A Ray on this machine alone stays on loopback: Ray otherwise advertises this machine's network
            # address and listens on every interface (it reads this switch when it is imported).
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray = self._ray = import_ray()
        if not ray.is_initialized():         # else: the caller's own connection (a notebook, a test session)
            if self.address is None:
                ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1")
            else:
                try:
                    ray.init(address=self.address)
                except (ConnectionError, RuntimeError, ValueError) as e:
                    raise P3MError(f"cannot connect to the Ray cluster at {self.address}: {_first_line(e)}",
                                   "is it running (ray start --head)? check --ray-address / RAY_ADDRESS; a cluster "
                                   "with token auth needs RAY_AUTH_MODE=token here too") from None
            self._started = True
        try:
            self.workers = self._check_resources()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def _check_resources(self) -> int:
        """How many videos the cluster runs at once; P3MError when no node can take one (Ray would leave
        the tasks pending forever)."""
        nodes = [node["Resources"] for node in self._ray.nodes() if node.get("Alive")]
        where = f"the Ray cluster at {self.address}" if self.address else "the local Ray"
        if self.gpus and not any(node.get("GPU", 0) for node in nodes):
            raise P3MError(f"--gpus-per-video {self.gpus:g} asks for GPUs, and {where} has none",
                           "drop --gpus-per-video, or add GPU nodes (ray start --num-gpus N)")
        slots = sum(min(math.floor(node.get("CPU", 0) / self.cpus + 1e-9) if self.cpus else math.inf,
                        math.floor(node.get("GPU", 0) / self.gpus + 1e-9) if self.gpus else math.inf)
                    for node in nodes)
        if not slots:
            asked = f"{self.cpus:g} CPUs" + (f" and {self.gpus:g} GPUs" if self.gpus else "")
            raise P3MError(f"no node of {where} has {asked} for a video",
                           "lower --cpus-per-video / --gpus-per-video, or add bigger nodes")
        return int(slots) if slots != math.inf else len(nodes)

    def submit(self, videos: list[Video]) -> None:
        task = self._ray.remote(cut_one).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=MAX_RETRIES,
                                                 retry_exceptions=False)
        settings = self._ray.put(self.settings)
        for video in videos:
            self._running[task.remote(video, settings)] = video

    @property
    def pending(self) -> bool:
        return bool(self._running)

    def wait(self, timeout: float) -> list[VideoResult]:
        """The results that finish within `timeout` seconds. Raises ModelError when the model does not load."""
        ready, _ = self._ray.wait(list(self._running), num_returns=1, timeout=timeout)
        if ready:                                   # and whatever else is ready by now
            ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
        return [self._result(ref, self._running.pop(ref)) for ref in ready]

    def _result(self, ref: Any, video: Video) -> VideoResult:
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.TaskCancelledError:
            return VideoResult(video.input, video.output, "cancelled")
        except exceptions.RayTaskError as e:
            if isinstance(e.cause, ModelError):
                raise e.cause from None
            cause = e.cause or e
            return VideoResult(video.input, video.output, "failed",
                               error=f"{type(cause).__name__}: {_first_line(cause)}")
        except exceptions.RayError as e:            # its worker or node died, MAX_RETRIES + 1 times
            return VideoResult(video.input, video.output, "failed",
                               error=f"its Ray worker died ({MAX_RETRIES + 1} tries): {_first_line(e)}")

    def cancel(self) -> list[VideoResult]:
        """Stop: videos not started are not run, running ones stop (Ray's cancel interrupts them) and remove
        their partial outputs; returns the results of those that finished or stopped. A second Ctrl-C
        force-kills the workers (the hidden partial files of their videos may then remain)."""
        for ref in self._running:
            self._ray.cancel(ref)
        results: list[VideoResult] = []
        try:
            while self._running:
                results += self.wait(STOP_WAIT_S)
        except KeyboardInterrupt:
            for ref in self._running:
                self._ray.cancel(ref, force=True)
            raise
        return results


def _on_loopback(address: str) -> bool:
    host = address.split("://")[-1].rsplit(":", 1)[0]
    return host == "localhost" or host.startswith("127.")


def _first_line(error: object) -> str:
    text = str(error).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(error).__name__
