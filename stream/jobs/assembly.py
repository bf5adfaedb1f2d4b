"""What the offline and live jobs build alike between source and sink: the compositor, the model with its
matting stage and smoother, the thread limits, the stage plan and the face blur. Each job adds its ends,
its queue policy and what only it does (offline: progress; live: the AlphaReuse worker, the stats)."""
from __future__ import annotations

import contextlib
import logging
import os
import sys

import cv2

from model.errors import P3MError
from model.matters.base import Matter
from model.matters.registry import make_matter
from stream.jobs.config import CutoutConfig
from stream.protocols import Source, Stage
from stream.sinks.files import job_outputs
from stream.sinks.paths import Confirm, input_files, reserve_outputs
from stream.stages.backgrounds import background_file
from stream.stages.compositing import Compositor
from stream.stages.device_cutout import DeviceCutout
from stream.stages.faces import FaceBlur
from stream.stages.matte_tuning import MatteTuningStage
from stream.stages.matting import MattingStage
from stream.stages.refine import RefineStage
from stream.stages.smoothing import TemporalSmoother
from stream.stages.steadiness import StillHold
from stream.stages.subjects import SubjectSelection

log = logging.getLogger(__name__)
LOOKBACK = 24            # frames the offline face blur holds to trace a face back (stream/stages/face_lookback.py)


class Assembly:
    """A job's stages from `settings`, closed by `stack`, made in two steps so each check comes before what
    it guards: the constructor makes the compositor (a bad background fails before the job opens its input),
    `load()` the model and its matting stage (a bad infer_size fails before the job opens any output)."""

    def __init__(self, stack: contextlib.ExitStack, settings: CutoutConfig) -> None:
        self.settings, self._stack = settings, stack
        self.compositor = stack.enter_context(contextlib.closing(
            Compositor(settings.background, settings.foreground_estimation, settings.spill)))
        self.smoother = TemporalSmoother(strength=settings.smoothing_strength, enabled=settings.smoothing)
        self.tuning = MatteTuningStage(settings.tuning) if settings.tuning.active else None
        self.matting: MattingStage | None = None
        self.faces: FaceBlur | None = None
        self.refine: RefineStage | None = None

    def reserve_outputs(self, output: str | None, source: Source, *, overwrite: bool = False,
                        confirm: Confirm | None = None) -> None:
        """`output` and the config's `alpha_out` checked and held for the job (stream/sinks/paths.py): never
        over the input or the background, never over existing files unless `overwrite` or `confirm`."""
        outputs = job_outputs(output, self.settings.alpha_out, transparent=self.compositor.transparent)
        inputs = [input_files("the input", source.path, getattr(source, "files", None)),
                  input_files("the background", background_file(self.settings.background))]
        self._stack.enter_context(reserve_outputs(outputs, inputs, overwrite=overwrite, confirm=confirm))

    @property
    def matter(self) -> Matter:
        """The loaded model (after `load()`)."""
        if self.matting is None:
            raise RuntimeError("Assembly.load() makes the matter")
        return self.matting.matter

    def load(self, *, batched: bool = False, matter: Matter | None = None) -> MattingStage:
        """Load the model, make its matting stage (which checks infer_size against the model), limit the
        thread pools and log the model. `batched` (offline): the config's `batch`, else the model's own.
        `matter`: a model already loaded from these settings, which its owner closes (a batch worker's)."""
        s = self.settings
        owned = matter is None
        if matter is None:
            matter = self._stack.enter_context(make_matter(s.model, weights=s.weights, device=s.device,
                                                           precision=s.precision))
        batch = (s.batch or matter.offline_batch) if batched else 1
        self.matting = MattingStage(matter, infer_size=s.infer_size, upsample=s.upsample, batch_size=batch,
                                    owns_matter=owned)
        limit_threads(matter)        # after the stage is made: it imports torch where it uses it
        log.info("model: %s%s", matter.describe(), f", {batch} frames a batch" if batch > 1 else "")
        return self.matting

    def stages(self, *, live: bool = False, keep_alpha: bool = True, overlap_batches: bool = True) -> list[Stage]:
        """`plan_stages` for the loaded model: offline, source to sink; live, the matting worker's stages."""
        if self.matting is None:
            raise RuntimeError("Assembly.load() makes the matting stage the plan arranges")
        return plan_stages(self.matting, self.smoother, self.compositor, live=live, keep_alpha=keep_alpha,
                           overlap_batches=overlap_batches, subjects=self.subject_selection(),
                           steadiness=StillHold() if self.smoother.active else None, tuning=self.tuning)

    def add_refine(self, stages: list[Stage]) -> RefineStage:
        """--refine's stage (kept as `self.refine`, for its time), put into `stages` just before matte tuning or
        the compositor (the CPU plan; CUDA's fused stage has none to put it before: refused)."""
        before = self.tuning if self.tuning in stages else self.compositor
        if before not in stages:
            raise P3MError("--refine runs on the CPU path: the CUDA cut-out composites on the device",
                           "add --device cpu, or leave out --refine")
        self.refine = RefineStage()
        stages.insert(stages.index(before), self.refine)
        return self.refine

    def one_by_one(self) -> list[Stage]:
        """After `load()`, the stages for frames taken one at a time on the caller's thread (photos, previews):
        the matting steps, --refine, matte tuning, compositing and face hiding without look-back."""
        stages = [*self.stages(live=True), self.compositor]
        if self.settings.refine:
            self.add_refine(stages)
        return [*stages, *self.face_blur(live=True)]

    def subject_selection(self) -> SubjectSelection | None:
        """The subject selection the config asks for: `auto` is `main` for the bundled model, `off` (the matte
        as it comes) for others."""
        mode = self.settings.subjects
        if mode == "auto":
            mode = "main" if self.matter.name == "mediapipe" else "off"
        if mode == "off":
            return None
        if self.matting is not None and self.matting.device_path is not None:
            raise P3MError(f"subjects {mode} runs on the CPU path; the model here runs on {self.matting.device}",
                           "use --subjects off (or auto), or --device cpu")
        return SubjectSelection(mode)

    def face_blur(self, *, live: bool = False) -> list[Stage]:
        """The face-blur stage when the config asks for it (none otherwise; kept as `self.faces` for its counters),
        closed with the job; it goes after compositing: found on the input, hidden in the output. Offline it
        looks back LOOKBACK frames; live it looks back none (each frame would wait) and a failed face check
        covers the frame."""
        s = self.settings
        if not s.blur_faces:
            return []
        self.faces = self._stack.enter_context(contextlib.closing(FaceBlur(
            s.blur_style, s.face_model, whose=s.blur_faces, lookback=0 if live else LOOKBACK, cover_on_error=live)))
        return [self.faces]


def plan_stages(matting: MattingStage, smoother: TemporalSmoother, compositor: Compositor, *, live: bool = False,
                keep_alpha: bool = True, overlap_batches: bool = True,
                subjects: SubjectSelection | None = None, steadiness: StillHold | None = None,
                tuning: MatteTuningStage | None = None) -> list[Stage]:
    """Matting → (subject selection →) smoothing → (still-picture hold →) (matte tuning →) compositing as
    pipeline stages: on the CPU the model, the smoother and the upsampling apart, then the compositor; on CUDA one
    DeviceCutout (offline with `keep_alpha` and `overlap_batches`). Live, the matting worker's stages: the compose
    path keeps the compositor."""
    if matting.device_path is None:
        # The smoother blends the model-resolution alpha (fewer pixels to blend), and the guided upsampling
        # then fits the blend to the current frame's edges; subjects are chosen at that resolution too. The
        # still-picture hold comes after the upsampling, whose edges shimmer with the frame's noise.
        model, upsampling = matting.split()
        steps = [s for s in (model, subjects, smoother, upsampling, steadiness, tuning) if s is not None]
        return steps if live else [*steps, compositor]
    if tuning is not None:
        raise P3MError(f"matte tuning (--threshold, --erode, --dilate, --feather) runs on the CPU path; the model "
                       f"here runs on {matting.device}", "add --device cpu, or leave those options out")
    if live:
        # The compose path keeps `compositor` for frames that reuse an older alpha; the worker composites its
        # own frame on the device with a second one, where that gives the same picture (a stateless background).
        twin = (Compositor(compositor.spec, compositor.foreground_estimation, compositor.spill)
                if compositor.stateless else None)
        return [DeviceCutout(matting, smoother, twin)]
    return [DeviceCutout(matting, smoother, compositor, keep_alpha=keep_alpha, overlap=overlap_batches)]


def limit_threads(matter: Matter) -> None:
    """Thread pools for a pipeline that already runs a thread per stage (process-wide settings). torch,
    where something loaded it: every core for a matter that `uses_every_core`, else one; OpenCV: one."""
    torch = sys.modules.get("torch")
    if torch is not None:       # a second torch thread beside a light model stalls on the cores decode/encode use
        torch.set_num_threads((os.cpu_count() or 1) if matter.uses_every_core else 1)
    cv2.setNumThreads(1)        # its pool's workers spin between calls, taking CPU the other stages need
