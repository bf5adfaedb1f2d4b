"""What the offline and live jobs build alike: the stage plan for a matting stage (CPU stages or one device
stage) and the thread limits for a pipeline that already runs a thread per stage."""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import cv2

from model.matters.base import Matter
from stream.protocols import Stage
from stream.stages.compositing import Compositor
from stream.stages.device_cutout import DeviceCutout
from stream.stages.matting import MattingStage
from stream.stages.smoothing import TemporalSmoother

if TYPE_CHECKING:                   # the CPU path imports this module too, and runs without torch
    pass


OVERLAP_BATCHES = True      # offline: overlap a batch's host work with the previous one's GPU work (the


def matting_steps(matting: MattingStage, smoother: TemporalSmoother,
                  compositor: Compositor | None = None) -> list[Stage]:
    """Matting and temporal smoothing as pipeline stages. On the CPU: model, smoother, upsampling; the smoother
    blends the model-resolution alpha (a sixth of the pixels at 720p: 0.2 instead of 1.4 ms) and the guided
    upsampling then fits the blend to the current frame's edges. On CUDA: one DeviceCutout, which smooths
    the full-resolution alpha on the device before it comes down, and with `compositor` (CUDA only)
    composites there too: the frame comes back with its alpha and its `output`."""
    if matting.device_path is not None:
        return [DeviceCutout(matting, smoother, compositor)]
    if compositor is not None:
        raise ValueError("matting_steps composites only on CUDA: on the CPU the compositor is a stage of its own")
    model, upsampling = matting.split()
    return [model, smoother, upsampling]


def middle_stages(matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor, *,
                  keep_alpha: bool = True) -> list[Stage]:
    """The offline job's stages between source and sink: one DeviceCutout (overlapping batches) when matting
    runs on CUDA, else the model, the smoother, the upsampling (`matting_steps`) and the compositor on four
    threads."""
    if matting.device_path is None:
        return [*matting_steps(matting, smoother), compositor]
    return [DeviceCutout(matting, smoother, compositor, keep_alpha=keep_alpha, overlap=OVERLAP_BATCHES)]


def limit_threads(matter: Matter) -> None:
    """Thread pools for a pipeline that already runs a thread per stage (process-wide settings):
    torch (where something loaded it: P3M-Net, a CUDA path, a torch upsampler; the bundled model's default
    CPU job runs without it): one thread beside a light model (the smoother's ops stalled 50-100× when a
    second torch thread shared a core with decode/encode); P3M-Net on the CPU is heavy enough to use every core.
    OpenCV: one thread; its pool's workers spin between calls: 1.2-2 ms of CPU a 720p frame (throughput on
    2 cores moved within noise, 55.7 → 57.0 fps over four A/B pairs)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        from model.matters.p3mnet import P3MNetMatter

        heavy = isinstance(matter, P3MNetMatter) and matter.device == "cpu"
        torch.set_num_threads((os.cpu_count() or 1) if heavy else 1)
    cv2.setNumThreads(1)


def worker_steps(matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor) -> list[Stage]:
    """The live matting worker's stages: matting and smoothing (`matting_steps`), and on CUDA with a
    `stateless` background, compositing too, on the device, by a second Compositor of the same background
    (`compositor` stays on the compose path for frames that reuse an older alpha)."""
    if matting.device_path is not None and compositor.stateless:
        return matting_steps(matting, smoother, Compositor(compositor.spec))
    return matting_steps(matting, smoother)
