"""What the offline and live jobs build alike between source and sink: the compositor, the model with its
matting stage and smoother, the thread limits, the stage plan and the face blur. Each job adds its ends,
its queue policy and what only it does (offline: progress; live: the AlphaReuse worker, the stats)."""
from __future__ import annotations

import contextlib
import logging
import os
import sys

import cv2

from model.matters.base import Matter
from model.matters.registry import make_matter
from stream.jobs.config import CutoutConfig
from stream.protocols import Stage
from stream.stages.compositing import Compositor
from stream.stages.device_cutout import DeviceCutout
from stream.stages.faces import FaceBlur
from stream.stages.matting import MattingStage
from stream.stages.smoothing import TemporalSmoother

log = logging.getLogger(__name__)


class Assembly:
    """A job's stages from `settings`, closed by `stack`, made in two steps so each check comes before what
    it guards: the constructor makes the compositor (a bad background fails before the job opens its input),
    `load()` the model and its matting stage (a bad infer_size fails before the job opens any output)."""

    def __init__(self, stack: contextlib.ExitStack, settings: CutoutConfig) -> None:
        self.settings, self._stack = settings, stack
        self.compositor = stack.enter_context(contextlib.closing(Compositor(settings.background)))
        self.smoother = TemporalSmoother(strength=settings.smoothing_strength, enabled=settings.smoothing)
        self.matting: MattingStage | None = None

    @property
    def matter(self) -> Matter:
        """The loaded model (after `load()`)."""
        if self.matting is None:
            raise RuntimeError("Assembly.load() makes the matter")
        return self.matting.matter

    def load(self, *, batched: bool = False) -> MattingStage:
        """Load the model, make its matting stage (which checks infer_size against the model), limit the
        thread pools and log the model. `batched` (offline): the config's `batch`, else the model's own."""
        s = self.settings
        matter = self._stack.enter_context(make_matter(s.model, weights=s.weights, device=s.device,
                                                       precision=s.precision))
        batch = (s.batch or matter.offline_batch) if batched else 1
        self.matting = MattingStage(matter, infer_size=s.infer_size, upsample=s.upsample, batch_size=batch)
        limit_threads(matter)        # after the stage is made: it imports torch where it uses it
        log.info("model: %s%s", matter.describe(), f", {batch} frames a batch" if batch > 1 else "")
        return self.matting

    def stages(self, *, live: bool = False, keep_alpha: bool = True, overlap_batches: bool = True) -> list[Stage]:
        """`plan_stages` for the loaded model: offline, source to sink; live, the matting worker's stages."""
        if self.matting is None:
            raise RuntimeError("Assembly.load() makes the matting stage the plan arranges")
        return plan_stages(self.matting, self.smoother, self.compositor, live=live, keep_alpha=keep_alpha,
                           overlap_batches=overlap_batches)

    def face_blur(self) -> list[Stage]:
        """The face-blur stage when the config asks for it (none otherwise), closed with the job; it goes
        after compositing: detected on the input, hidden in the output."""
        s = self.settings
        if not s.blur_faces:
            return []
        return [self._stack.enter_context(contextlib.closing(FaceBlur(s.blur_style, s.face_model)))]


def plan_stages(matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor, *, live: bool = False,
                keep_alpha: bool = True, overlap_batches: bool = True) -> list[Stage]:
    """Matting → smoothing → compositing as pipeline stages: on the CPU the model, the smoother and the
    upsampling apart, then the compositor; on CUDA one DeviceCutout (offline with `keep_alpha` and
    `overlap_batches`). Live, the matting worker's stages: the compose path keeps the compositor."""
    if matting.device_path is None:
        # The smoother blends the model-resolution alpha (fewer pixels to blend), and the guided upsampling
        # then fits the blend to the current frame's edges.
        model, upsampling = matting.split()
        return [model, smoother, upsampling] if live else [model, smoother, upsampling, compositor]
    if live:
        # The compose path keeps `compositor` for frames that reuse an older alpha; the worker composites its
        # own frame on the device with a second one, where that gives the same picture (a stateless background).
        return [DeviceCutout(matting, smoother, Compositor(compositor.spec) if compositor.stateless else None)]
    return [DeviceCutout(matting, smoother, compositor, keep_alpha=keep_alpha, overlap=overlap_batches)]


def limit_threads(matter: Matter) -> None:
    """Thread pools for a pipeline that already runs a thread per stage (process-wide settings). torch,
    where something loaded it: every core for a matter that `uses_every_core`, else one; OpenCV: one."""
    torch = sys.modules.get("torch")
    if torch is not None:       # a second torch thread beside a light model stalls on the cores decode/encode use
        torch.set_num_threads((os.cpu_count() or 1) if matter.uses_every_core else 1)
    cv2.setNumThreads(1)        # its pool's workers spin between calls, taking CPU the other stages need
