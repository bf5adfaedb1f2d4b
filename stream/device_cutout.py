"""Matting, temporal smoothing and compositing as one stage on the GPU: the frame goes up once, the alpha
and the composite come down once, and nothing in between touches the host.

    frame ─upload─▶ [ shrink, model, guided upsample ]  (one CUDA graph; stream/device_matting.py)
                    ─▶ smoothing (TemporalSmoother.smooth) ─▶ compositing (Compositor.composite_tensor)
                    ─download─▶ frame.alpha, frame.output

The offline job uses it in place of its matting, smoothing and compositing stages when the matter runs on
CUDA; the live job's matting worker uses it without compositing (its frames are composited with whichever
alpha is newest). The same stage objects do the work, so options mean the same; it also runs on the CPU,
for tests. `matting_steps` and `middle_stages` pick between it and the CPU stages.
Measured on an H200 machine at 1080p (bench/RESULTS.md): on its own it gained nothing, because the sink's
colour conversion held the GIL; with that moved to OpenCV, 54-65 fps.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from stream.frames import Frame
from stream.pipeline import Stage
from stream.stages import Compositor, MattingStage, TemporalSmoother

if TYPE_CHECKING:                   # the CPU path imports this module too, and runs without torch
    from stream.device_matting import DeviceMatting


class DeviceCutout:
    """One stage for `matting` → `smoother` → `compositor` on `device_path`'s device (default: the matting
    stage's own device path). Without `keep_alpha` only the composite comes back (`frame.alpha` stays None:
    nothing after compositing reads it but a matte output); without a compositor only the alpha does.
    Closes all of them."""

    def __init__(self, matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor | None,
                 device_path: DeviceMatting | None = None, *, keep_alpha: bool = True) -> None:
        path = device_path or matting.device_path
        if path is None:
            raise ValueError("DeviceCutout needs a matting stage whose matter runs on CUDA (or a device_path)")
        if compositor is None and not keep_alpha:
            raise ValueError("DeviceCutout without a compositor must keep the alpha: it is all that comes back")
        self.matting, self.smoother, self.compositor, self.path = matting, smoother, compositor, path
        self.batch_size = matting.batch_size
        self.keep_alpha = keep_alpha
        self.name = "matting+smoothing" + ("+compositing" if compositor is not None else "") + " on device"

    def process(self, frame: Frame) -> Frame:
        return self.process_batch([frame])[0]

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        import torch

        for group in self.path.batches(frames):
            images, alphas = self.path.matte_on_device(group)
            with self.path.on_compute():
                alphas = alphas.clone()          # the graph overwrites its output; the smoother keeps one
                if self.smoother.active:
                    alphas = torch.stack([self.smoother.smooth(a, f.image) for a, f in zip(alphas, group)])
                wanted = [alphas] if self.keep_alpha else []
                if self.compositor is not None:
                    wanted.insert(0, self.compositor.composite_tensor(images, alphas, [f.image for f in group]))
            hosts = self.path.download(*wanted)
            if self.compositor is not None:
                for frame, output in zip(group, hosts.pop(0)):
                    frame.output = output.numpy()
            if self.keep_alpha:
                for frame, alpha in zip(group, hosts.pop(0)):
                    frame.alpha = alpha.numpy()
        return frames

    def close(self) -> None:
        for stage in (self.matting, self.smoother, self.compositor):
            if stage is not None:
                stage.close()


def matting_steps(matting: MattingStage, smoother: TemporalSmoother) -> list[Stage]:
    """Matting and temporal smoothing as pipeline stages. On the CPU: model, smoother, upsampling; the smoother
    blends the model-resolution alpha (a sixth of the pixels at 720p: 0.2 instead of 1.4 ms) and the guided
    upsampling then fits the blend to the current frame's edges. On CUDA: one DeviceCutout without
    compositing, which smooths the full-resolution alpha on the device before it comes down."""
    if matting.device_path is not None:
        return [DeviceCutout(matting, smoother, None)]
    model, upsampling = matting.split()
    return [model, smoother, upsampling]


def middle_stages(matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor, *,
                  keep_alpha: bool = True) -> list[Stage]:
    """The offline job's stages between source and sink: one DeviceCutout when matting runs on CUDA, else
    the model, the smoother, the upsampling (`matting_steps`) and the compositor on four threads."""
    if matting.device_path is None:
        return [*matting_steps(matting, smoother), compositor]
    return [DeviceCutout(matting, smoother, compositor, keep_alpha=keep_alpha)]
