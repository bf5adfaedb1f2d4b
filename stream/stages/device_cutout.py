"""Matting, temporal smoothing and compositing as one stage on the GPU: the frame goes up once, the alpha
and the composite come down once, and nothing in between touches the host.

    frame ─upload─▶ [ shrink, model, guided upsample ]  (one CUDA graph; stream/stages/device_matting.py)
                    ─▶ smoothing (TemporalSmoother.smooth) ─▶ compositing (Compositor.composite_tensor)
                    ─download─▶ frame.alpha, frame.output

The offline job uses it in place of its matting, smoothing and compositing stages when the matter runs on
CUDA; the live job's matting worker uses it too (stream/jobs/live.py: a frame that gets its own alpha leaves
with the worker's composite, one that reuses an older alpha is composited on the CPU). The same stage
objects do the work, so options mean the same; it also runs on the CPU, for tests. `plan_stages`
(stream/jobs/assembly.py) picks between it and the CPU stages.

Offline (`overlap`), a batch's results are collected only after the next batch was queued: while the GPU
works on one batch, the host copies the next one's frames into the other upload buffers and the pipeline
moves the previous one on, so neither waits for the other. `process_batch` then gives back the frames of
the batch before, and `flush()` the last one at the end of the stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stream.frames import Frame
from stream.stages.compositing import Compositor
from stream.stages.matting import MattingStage
from stream.stages.smoothing import TemporalSmoother

if TYPE_CHECKING:                   # the CPU path imports this module too, and runs without torch
    from stream.stages.device_matting import DeviceMatting, Download


@dataclass
class _InFlight:
    """A batch queued on the device: its frames, the upload slot it holds, its results on their way down."""

    frames: list[Frame]
    slot: int
    download: Download


class DeviceCutout:
    """One stage for `matting` → `smoother` → `compositor` on `device_path`'s device (default: the matting
    stage's own device path). Without `keep_alpha` only the composite comes back (`frame.alpha` stays None:
    nothing after compositing reads it but a matte output); without a compositor only the alpha does.
    With `overlap`, `process_batch` returns the frames of the batch before (see the module doc) and
    `flush()` the rest; `process` always returns its own frame. Closes all of them."""

    def __init__(self, matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor | None,
                 device_path: DeviceMatting | None = None, *, keep_alpha: bool = True,
                 overlap: bool = False) -> None:
        path = device_path or matting.device_path
        if path is None:
            raise ValueError("DeviceCutout needs a matting stage whose matter runs on CUDA (or a device_path)")
        if compositor is None and not keep_alpha:
            raise ValueError("DeviceCutout without a compositor must keep the alpha: it is all that comes back")
        self.matting, self.smoother, self.compositor, self.path = matting, smoother, compositor, path
        self.batch_size = matting.batch_size
        self.keep_alpha = keep_alpha
        self.overlap = overlap
        self.name = "matting+smoothing" + ("+compositing" if compositor is not None else "") + " on device"
        self._pending: _InFlight | None = None      # with overlap: the batch queued last, not yet collected

    def process(self, frame: Frame) -> Frame:
        return self._collect(self._queue([frame]))[0]

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        """`frames` through the device, `batch_size` at a time. Returns them; with `overlap`, returns the
        frames queued before instead (in order; none on the first call) and keeps these in flight."""
        done: list[Frame] = []
        for group in self.path.batches(frames):
            queued = self._queue(list(group))
            if self.overlap:
                done += self.flush()
                self._pending = queued
            else:
                done += self._collect(queued)
        return done

    def flush(self) -> list[Frame]:
        """The frames still in flight, finished (the pipeline calls this at the end of the stream)."""
        pending, self._pending = self._pending, None
        return self._collect(pending) if pending is not None else []

    def _queue(self, group: list[Frame]) -> _InFlight:
        """Queue `group`'s upload, matting, smoothing, compositing and download, in an upload slot that no
        batch in flight holds; returns without waiting for the GPU."""
        import torch

        slot = 0 if self._pending is None else 1 - self._pending.slot
        images, alphas = self.path.matte_on_device(group, slot)
        with self.path.on_compute():
            alphas = alphas.clone()          # the graph overwrites its output; the smoother keeps one
            if self.smoother.active:
                alphas = torch.stack([self.smoother.smooth(a, f.image) for a, f in zip(alphas, group)])
            wanted = [alphas] if self.keep_alpha else []
            if self.compositor is not None:
                wanted.insert(0, self.compositor.composite_tensor(images, alphas, [f.image for f in group]))
        return _InFlight(group, slot, self.path.start_download(*wanted))

    def _collect(self, batch: _InFlight) -> list[Frame]:
        """Wait for `batch`'s results and put them on its frames (its slot is free again after this)."""
        hosts = [host.numpy() for host in batch.download.wait()]     # views: each frame keeps its slice alive
        if self.compositor is not None:
            for frame, output in zip(batch.frames, hosts.pop(0)):
                frame.output = output
        if self.keep_alpha:
            for frame, alpha in zip(batch.frames, hosts.pop(0)):
                frame.alpha = alpha
        return batch.frames

    def close(self) -> None:
        self._pending = None          # a cancelled job drops its last batch
        for stage in (self.matting, self.smoother, self.compositor):
            if stage is not None:
                stage.close()
