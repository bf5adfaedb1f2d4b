"""Matting, temporal smoothing and compositing as one stage on the GPU: the frame goes up once, the alpha
and the composite come down once, and nothing in between touches the host.

    frame ─upload─▶ [ shrink, model, guided upsample ]  (one CUDA graph; stream/device_matting.py)
                    ─▶ smoothing (TemporalSmoother.smooth) ─▶ compositing (Compositor.composite_tensor)
                    ─download─▶ frame.alpha, frame.output

The offline job uses it in place of its matting, smoothing and compositing stages when the matter runs on
CUDA. The same stage objects do the work, so options mean the same; it also runs on the CPU, for tests.
Measured on an H200 machine at 1080p (bench/RESULTS.md): on its own it gained nothing, because the sink's
colour conversion held the GIL; with that moved to OpenCV, 54-65 fps.
"""
from __future__ import annotations

import torch

from stream.device_matting import DeviceMatting
from stream.frames import Frame
from stream.pipeline import Stage
from stream.stages import Compositor, MattingStage, TemporalSmoother, matting_steps


class DeviceCutout:
    """One stage for `matting` → `smoother` → `compositor` on `device_path`'s device (default: the matting
    stage's own device path). Without `keep_alpha` only the composite comes back (`frame.alpha` stays None:
    nothing after compositing reads it but a matte output). Closes all three."""

    name = "matting+smoothing+compositing on device"

    def __init__(self, matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor,
                 device_path: DeviceMatting | None = None, *, keep_alpha: bool = True) -> None:
        path = device_path or matting.device_path
        if path is None:
            raise ValueError("DeviceCutout needs a matting stage whose matter runs on CUDA (or a device_path)")
        self.matting, self.smoother, self.compositor, self.path = matting, smoother, compositor, path
        self.batch_size = matting.batch_size
        self.keep_alpha = keep_alpha

    def process(self, frame: Frame) -> Frame:
        return self.process_batch([frame])[0]

    def process_batch(self, frames: list[Frame]) -> list[Frame]:
        for group in self.path.batches(frames):
            images, alphas = self.path.matte_on_device(group)
            with self.path.on_compute():
                alphas = alphas.clone()          # the graph overwrites its output; the smoother keeps one
                if self.smoother.active:
                    alphas = torch.stack([self.smoother.smooth(a, f.image) for a, f in zip(alphas, group)])
                composite = self.compositor.composite_tensor(images, alphas, [f.image for f in group])
            if self.keep_alpha:
                host_composites, host_alphas = self.path.download(composite, alphas)
                for frame, alpha in zip(group, host_alphas):
                    frame.alpha = alpha.numpy()
            else:
                (host_composites,) = self.path.download(composite)
            for frame, output in zip(group, host_composites):
                frame.output = output.numpy()
        return frames

    def close(self) -> None:
        for stage in (self.matting, self.smoother, self.compositor):
            stage.close()


def middle_stages(matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor, *,
                  keep_alpha: bool = True) -> list[Stage]:
    """The offline job's stages between source and sink: one DeviceCutout when matting runs on CUDA, else
    the model, the smoother, the upsampling (`matting_steps`) and the compositor on four threads."""
    if matting.device_path is None:
        return [*matting_steps(matting, smoother), compositor]
    return [DeviceCutout(matting, smoother, compositor, keep_alpha=keep_alpha)]
