"""The offline job: a video (or image sequence) in, a composited or transparent video out."""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from model.errors import P3MError
from model.matters.base import Matter
from stream import hwcodecs
from stream.jobs.assembly import LOOKBACK, Assembly
from stream.jobs.budget import check_memory
from stream.jobs.config import CutoutConfig, load_config
from stream.jobs.photos import cut_photos, plan_photos
from stream.pipeline.runner import Pipeline, Stats, cancel_on_signals
from stream.sinks.encoding import encoded_size
from stream.sinks.files import check_outputs, open_sinks
from stream.sinks.paths import Confirm
from stream.sources.files import WHOLE, open_source
from stream.sources.matte import MatteSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CutoutResult:
    """What a finished (or interrupted) job did."""

    output: str
    frames: int
    seconds: float
    model: str
    interrupted: bool
    damaged: int = 0                # input packets the decoder rejected (those frames are missing)
    busy_ms: dict[str, float] = field(default_factory=dict)   # per thread: ms of work per frame written
    faces_hidden: int | None = None  # frames written with a face hidden (None: --blur-faces off)
    refine_s: float | None = None    # seconds --refine's closed-form matting took (None: off)
    unit: str = "frame"              # what `frames` counts: frames, or photos
    alpha_out: str | None = None     # the matte written beside the output (--alpha-out)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """The one-line end-of-job report."""
        unit = self.unit + ("s" if self.frames != 1 or self.unit == "frame" else "")
        state = f"interrupted: kept the {self.frames} {unit} done" if self.interrupted else f"{self.frames} {unit}"
        if self.damaged:
            state += f" ({self.damaged} damaged input frame{'s' if self.damaged > 1 else ''} skipped)"
        outputs = self.output if self.alpha_out is None else f"{self.output} and {self.alpha_out}"
        where = f"-> {outputs}" if self.frames else f"({outputs} not created)"
        if self.faces_hidden is not None:
            state += f" (faces hidden in {self.faces_hidden})"
        if self.refine_s is not None:
            state += f", refined in {self.refine_s:.1f} s ({1000 * self.refine_s / max(self.frames, 1):.0f} ms a frame)"
        each = 1000 * self.seconds / max(self.frames, 1)
        rate = f"{self.fps:.1f} fps" if self.unit == "frame" else f"{each:.0f} ms each"
        return f"{state} in {self.seconds:.1f} s ({rate}) with {self.model} {where}"


def cutout(input: str | Path, output: str | Path, *, config: str | Path | None = None,
           quiet: bool = False, overwrite: bool = False, confirm: Confirm | None = None,
           **options: Any) -> CutoutResult:
    """Cut the person out of `input` and write `output`; `options` are CutoutConfig fields.

    `config` is a YAML file or preset name whose values the options override. Raises P3MError on
    user mistakes (bad input, output, weights, background, option).
    """
    settings = load_config(config, **options)
    return run_cutout(str(input), str(output), settings, quiet=quiet, overwrite=overwrite, confirm=confirm)


def run_cutout(input: str, output: str, settings: CutoutConfig, *, quiet: bool = False,
               overlap_batches: bool = True, matter: Matter | None = None,
               keep_interrupted: bool = True, overwrite: bool = False,
               confirm: Confirm | None = None) -> CutoutResult:
    """Build source → matting → smoothing → compositing → sink(s) and run it offline (nothing dropped).
    `overlap_batches`: on CUDA, a batch's host work overlaps the previous batch's GPU work (DeviceCutout).
    `matter`: a model loaded from `settings` that the caller keeps (and closes) for its next jobs.
    `keep_interrupted`: Ctrl-C keeps a playable output of the frames done; False removes it (Aborted).
    `overwrite`: replace existing outputs; else `confirm` (a terminal's y/N) decides, or they are refused.
    Photos (an image, or a folder of them, into a folder) are cut out one by one under their own names."""
    photos = plan_photos(input, output, settings.alpha_out)
    if photos is not None:
        if settings.span != WHOLE or settings.matte is not None:
            raise P3MError("--start, --duration, --frames and --matte are for videos and sequences, not photos",
                           "leave them out, or give a sequence pattern: -o out/%05d.png")
        model, seconds = cut_photos(photos, settings, overwrite=overwrite, confirm=confirm, quiet=quiet)
        where = output if len(photos) == 1 else os.path.dirname(photos[0].out) or "."
        return CutoutResult(output=where, frames=len(photos), seconds=seconds, model=model, interrupted=False,
                            unit="photo")
    with contextlib.ExitStack() as stack:
        assembly = Assembly(stack, settings)       # the background is checked before anything opens
        hardware = settings.hw_codecs != "off"      # NVENC where it works, else CPU (logged)
        # NVDEC only when asked: through PyAV its frames come back to host memory and convert there, slower
        # than decoding on the CPU threads (bench/RESULTS.md).
        source = stack.enter_context(open_source(input, hw_decode=settings.hw_codecs == "all", span=settings.span))
        if settings.matte is not None:             # the alpha comes with each frame: no model runs
            source = stack.enter_context(MatteSource(source, settings.matte, settings.span))
        transparent = assembly.compositor.transparent
        assembly.reserve_outputs(output, source, overwrite=overwrite, confirm=confirm)
        formats = check_outputs(output, source, transparent=transparent, alpha_out=settings.alpha_out)
        if hardware:          # NVENC's probe (slow where it fails) runs while the model loads
            for fmt in formats:
                hwcodecs.prefetch_encoder(fmt.codec, *encoded_size(fmt, source.width, source.height, settings.odd_size),
                                          fmt.pix_fmt)
        # Before the sinks: a bad infer_size leaves no output.
        batch = 1 if settings.matte is not None else assembly.load(batched=True, matter=matter).batch_size
        # CUDA: one stage, the tensors stay on the device; the alpha comes back only for a matte output.
        keep_alpha = settings.alpha_out is not None or settings.blur_faces == "others"   # others: whose face
        given = [*([assembly.tuning] if assembly.tuning else []), assembly.compositor]     # --matte: no model
        stages = [*(assembly.stages(keep_alpha=keep_alpha, overlap_batches=overlap_batches)
                    if settings.matte is None else given), *assembly.face_blur()]
        refine = assembly.add_refine(stages) if settings.refine else None
        check_memory(source.width, source.height, infer_size=settings.infer_size, batch=batch,
                     queue_size=settings.queue_size, stage_names=[getattr(s, "name", "") for s in stages],
                     held=LOOKBACK if assembly.faces is not None else 0)
        sink = stack.enter_context(open_sinks(output, source, transparent=transparent,
                                              alpha_out=settings.alpha_out, audio=settings.audio, crf=settings.crf,
                                              preset=settings.preset, hw_codecs=hardware,
                                              odd_size=settings.odd_size))
        log.info("video: %s", hwcodecs.describe(source, sink))
        pipeline = Pipeline(source, stages, sink, policy="offline", capacity=settings.queue_size)
        with _progress(source.frame_count, quiet) as on_frame, cancel_on_signals(pipeline, keep=keep_interrupted):
            stats = pipeline.run(on_frame)
    result = CutoutResult(output=output, alpha_out=settings.alpha_out, frames=stats.written, seconds=stats.elapsed,
                        model=assembly.matter.describe() if settings.matte is None else f"the matte {settings.matte}",
                        interrupted=stats.cancelled,
                        damaged=getattr(source, "damaged", 0),
                        busy_ms={k: 1000 * v / max(stats.written, 1) for k, v in stats.busy.items()},
                        faces_hidden=None if assembly.faces is None else assembly.faces.frames_hidden,
                        refine_s=None if refine is None else refine.seconds)
    if result.faces_hidden == 0 and result.frames:
        log.warning("--blur-faces found no face in any of the %d frames: check the output by eye before "
                    "sharing it", result.frames)
    absent = assembly.matting.presence.warning() if settings.matte is None and assembly.matting else None
    if absent and result.frames:
        log.warning("%s", absent)
    return result


@contextlib.contextmanager
def _progress(total: int | None, quiet: bool):
    """A tqdm bar (frames, fps, ETA) on a terminal; nothing when quiet or not a terminal."""
    bar = tqdm(total=total, unit="frame", dynamic_ncols=True, disable=True if quiet else None, leave=False)

    def update(stats: Stats) -> None:
        bar.update(stats.written - bar.n)

    try:
        yield update
    finally:
        bar.close()
