"""The matting stage's device path: frames uploaded once, then shrink → model → upsample on the device.

    host                         upload stream             compute stream
    frame.image ─copy─▶ pinned ──H2D (async)──▶ N×H×W×3 uint8 ──▶ [ shrink, matte, guided upsample ] ──D2H──▶ alpha
                       staging                 (device buffer)     one CUDA graph per (N, H, W)     pinned

MattingStage uses it when its matter runs on CUDA, and its own CPU path (OpenCV shrink, numpy model I/O)
otherwise. Batches shorter than `batch_size` (the last one) are padded with stale entries, so one graph serves
a whole video. Upload buffers come in `SLOTS` sets, so a caller can fill one while the GPU still works on
a batch from the other (DeviceCutout's overlap). The same code runs on the CPU, without streams, pinned
memory, events or graphs (for tests).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from model.matters.base import Matter
from model.runtime.graphs import GraphedFunction
from stream.frames import Frame
from stream.stages.guided_filter import GUIDED_EPS, GUIDED_RADIUS, LUMA
from stream.stages.guided_filter_torch import upsample_alpha

SLOTS = 2       # upload buffer sets: one being filled while the GPU works on a batch from the other


def shrink(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Area-like downscale of N×C×H×W float to `size` (h, w): bilinear to twice the size, then an exact 2×2
    average, when both sides shrink by more than 2. (MattingStage's CPU path, `matting._shrink`, halves
    exactly first and then goes bilinear: both stay close to an area resize, each cheap where it runs.)"""
    h, w = size
    if x.shape[-2] > 2 * h and x.shape[-1] > 2 * w:
        return F.avg_pool2d(F.interpolate(x, size=(2 * h, 2 * w), mode="bilinear", align_corners=False), 2)
    return F.interpolate(x, size=(h, w), mode="area")


@dataclass
class Download:
    """Host copies on their way down: `wait()` blocks until they are there and returns them."""

    hosts: list[Tensor]
    done: torch.cuda.Event | None = None       # recorded after the copies (None on the CPU: already done)

    def wait(self) -> list[Tensor]:
        if self.done is not None:
            self.done.synchronize()
        return self.hosts


class DeviceMatting:
    """Mattes frames on `matter.device`: `alphas(frames)` sets each `frame.alpha` (H×W float32, host memory).

    `infer_shape(H, W)` gives the model's (h, w); `upsample`, `radius`, `eps` and `guide` mean what they mean
    to MattingStage. With `cuda_graph` (and a graph-safe matter) the whole device work is one CUDA graph.
    Owned by one thread (the stage's).
    """

    def __init__(self, matter: Matter, infer_shape: Callable[[int, int], tuple[int, int]], *,
                 upsample: str = "guided", radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS,
                 guide: str = "gray", batch_size: int = 1, cuda_graph: bool = True) -> None:
        self.matter = matter
        self.infer_shape = infer_shape
        self.upsample, self.radius, self.eps, self.gray = upsample, radius, eps, guide == "gray"
        self.batch_size = batch_size
        self.device = torch.device(matter.device)
        self.cuda = self.device.type == "cuda"
        self._upload = torch.cuda.Stream(self.device) if self.cuda else None
        self._compute = torch.cuda.Stream(self.device) if self.cuda else None
        self._luma = torch.tensor(LUMA, device=self.device).view(1, 3, 1, 1) / 255.0   # made outside any capture
        self._graphed = GraphedFunction(self._matte) if self.cuda and cuda_graph and matter.graph_safe else None
        # (slot, N, H, W) -> (pinned staging, device copy)
        self._buffers: dict[tuple[int, int, int, int], tuple[Tensor, Tensor]] = {}

    def alphas(self, frames: Sequence[Frame]) -> None:
        """Set `frame.alpha` on each frame (frames of one size are matted together, `batch_size` at a time)."""
        for group in self.batches(frames):
            _, alpha = self.matte_on_device(group)
            for frame, a in zip(group, self.download(alpha)[0].numpy()):
                frame.alpha = a                  # a view of the pinned host tensor, which it keeps alive

    def batches(self, frames: Sequence[Frame]) -> Iterator[Sequence[Frame]]:
        """`frames` in runs of one size, at most `batch_size` long, in order."""
        start = 0
        while start < len(frames):
            size = frames[start].image.shape[:2]
            end = start + 1
            while end < len(frames) and end - start < max(self.batch_size, 1) and frames[end].image.shape[:2] == size:
                end += 1
            yield frames[start:end]
            start = end

    def matte_on_device(self, frames: Sequence[Frame], slot: int = 0) -> tuple[Tensor, Tensor]:
        """Upload `frames` (one size, at most `batch_size`) into upload buffer set `slot` and matte them: their
        N×H×W×3 uint8 images and N×H×W float32 alphas on the device, queued on the compute stream. The images
        are that slot's buffer, the alphas the graph's output: the next call overwrites the alphas (copy them
        first, on the compute stream), and the slot may be used again only after the host waited for every
        download queued after this batch's work (the slot's host buffer and device buffer are free then)."""
        height, width = frames[0].image.shape[:2]
        n = max(len(frames), self.batch_size)
        staging, device_in = self._buffer(slot, n, height, width)
        # One call for the batch: each call gives the GIL back and must wait for it again while another
        # thread runs Python, so per-frame copies would cost far more than the copying itself.
        np.stack([frame.image for frame in frames], out=staging.numpy()[:len(frames)])
        with torch.inference_mode(), self._on(self._upload):
            device_in.copy_(staging, non_blocking=self.cuda)
        if self.cuda:
            self._compute.wait_stream(self._upload)
        with self.on_compute():
            alpha = self._graphed(device_in) if self._graphed is not None else self._matte(device_in)
        return device_in[:len(frames)], alpha[:len(frames)]

    def on_compute(self) -> contextlib.AbstractContextManager:
        """Inference mode on the compute stream: where work on `matte_on_device`'s tensors is queued."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        stack.enter_context(self._on(self._compute))
        return stack

    def download(self, *tensors: Tensor) -> list[Tensor]:
        """Host copies of `tensors` (queued on the compute stream), in pinned memory on CUDA; one wait for all."""
        return self.start_download(*tensors).wait()

    def start_download(self, *tensors: Tensor) -> Download:
        """Queue host copies of `tensors` on the compute stream (into fresh pinned memory on CUDA) without
        waiting: the host goes on while the GPU finishes; `wait()` on the result gives the copies. Once it
        returned, everything queued before on the compute stream is done (a slot used before is free)."""
        with self.on_compute():
            if not self.cuda:
                return Download([t.clone() for t in tensors])
            hosts = [torch.empty(t.shape, dtype=t.dtype, pin_memory=True) for t in tensors]
            for host, t in zip(hosts, tensors):
                host.copy_(t, non_blocking=True)
            done = torch.cuda.Event(blocking=True)    # the waiting thread sleeps: x264 wants the cores
            done.record(self._compute)
            return Download(hosts, done)

    def _matte(self, frames: Tensor) -> Tensor:
        """N×H×W×3 uint8 on the device → N×H×W float32 alpha in [0, 1] (what the CUDA graph holds)."""
        height, width = frames.shape[1:3]
        x = frames.permute(0, 3, 1, 2).float()                 # N×3×H×W, 0-255, channels_last in memory
        small = shrink(x, self.infer_shape(height, width))
        alpha = self.matter.matte_tensor(small).float()
        guides = lambda: (self._guide(x), self._guide(small))        # noqa: E731
        return upsample_alpha(alpha, (height, width), self.upsample, guides, self.radius, self.eps)[:, 0]

    def _guide(self, x: Tensor) -> Tensor:
        """N×3×H×W RGB (0-255) → the guided filter's guide in [0, 1]: BT.601 gray or RGB."""
        if self.gray:
            return (x * self._luma).sum(1, keepdim=True)
        return (x / 255.0).contiguous()

    def _buffer(self, slot: int, n: int, height: int, width: int) -> tuple[Tensor, Tensor]:
        if not 0 <= slot < SLOTS:
            raise ValueError(f"upload slot {slot} does not exist: use 0 to {SLOTS - 1}")
        key = (slot, n, height, width)
        if key not in self._buffers:
            staging = torch.empty((n, height, width, 3), dtype=torch.uint8, pin_memory=self.cuda)
            staging.zero_()       # the padding of a first, short batch holds zeros, not garbage
            self._buffers[key] = (staging, torch.empty_like(staging, device=self.device))
        return self._buffers[key]

    def _on(self, stream: torch.cuda.Stream | None) -> contextlib.AbstractContextManager:
        return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()

    def close(self) -> None:
        """Drop graphs and buffers (their device memory goes with the last reference), once the GPU is done
        with them: a cancelled job can leave a batch queued."""
        if self.cuda:
            torch.cuda.synchronize(self.device)
        if self._graphed is not None:
            self._graphed.reset()
        self._buffers.clear()
