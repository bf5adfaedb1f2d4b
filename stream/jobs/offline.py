"""The offline job: a video (or image sequence) in, a composited or transparent video out."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from model.matters.registry import make_matter
from stream import hwcodecs
from stream.jobs.assembly import limit_threads, middle_stages
from stream.jobs.config import CutoutConfig, load_config
from stream.pipeline.runner import Pipeline, Stats, cancel_on_signals
from stream.sinks.files import check_outputs, open_sinks
from stream.sources.files import open_source
from stream.stages.compositing import Compositor
from stream.stages.faces import FaceBlur
from stream.stages.matting import MattingStage
from stream.stages.smoothing import TemporalSmoother

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

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """The one-line end-of-job report."""
        state = f"interrupted: kept the {self.frames} frames done" if self.interrupted else f"{self.frames} frames"
        if self.damaged:
            state += f" ({self.damaged} damaged input frame{'s' if self.damaged > 1 else ''} skipped)"
        where = f"-> {self.output}" if self.frames else f"({self.output} not created)"
        return f"{state} in {self.seconds:.1f} s ({self.fps:.1f} fps) with {self.model} {where}"


def cutout(input: str | Path, output: str | Path, *, config: str | Path | None = None,
           quiet: bool = False, **options: Any) -> CutoutResult:
    """Cut the person out of `input` and write `output`; `options` are CutoutConfig fields.

    `config` is a YAML file or preset name whose values the options override. Raises P3MError on
    user mistakes (bad input, output, weights, background, option).
    """
    settings = load_config(config, **options)
    return run_cutout(str(input), str(output), settings, quiet=quiet)


def run_cutout(input: str, output: str, settings: CutoutConfig, *, quiet: bool = False) -> CutoutResult:
    """Build source → matting → smoothing → compositing → sink(s) and run it offline (nothing dropped)."""
    with contextlib.ExitStack() as stack:
        compositor = stack.enter_context(contextlib.closing(Compositor(settings.background)))  # checked first
        hardware = settings.hw_codecs != "off"      # NVENC where it works, else CPU (logged)
        # NVDEC only when asked: through PyAV its frames come back to host memory and convert there, and
        # 1080p decoded at 121 fps that way vs 480 fps on the CPU threads of an H200 machine (bench/RESULTS.md).
        source = stack.enter_context(open_source(input, hw_decode=settings.hw_codecs == "all"))
        formats = check_outputs(output, source, transparent=compositor.transparent, alpha_out=settings.alpha_out)
        if hardware:          # NVENC's probe (~1 s where it fails) runs while the model loads
            for fmt in formats:
                hwcodecs.prefetch_encoder(fmt.codec, source.width, source.height, fmt.pix_fmt)
        matter = stack.enter_context(make_matter(settings.model, weights=settings.weights,
                                                 device=settings.device, precision=settings.precision))
        sink = stack.enter_context(open_sinks(output, source, transparent=compositor.transparent,
                                              alpha_out=settings.alpha_out, audio=settings.audio, crf=settings.crf,
                                              preset=settings.preset, hw_codecs=hardware))
        batch = settings.batch or matter.offline_batch
        log.info("model: %s%s", matter.describe(), f", {batch} frames a batch" if batch > 1 else "")
        log.info("video: %s", hwcodecs.describe(source, sink))
        matting = MattingStage(matter, infer_size=settings.infer_size, upsample=settings.upsample,
                               batch_size=batch)
        limit_threads(matter)        # after the stages are made: they import torch where they use it
        smoother = TemporalSmoother(strength=settings.smoothing_strength, enabled=settings.smoothing)
        # CUDA: one stage, the tensors stay on the device; the alpha comes back only for a matte output.
        stages = middle_stages(matting, smoother, compositor, keep_alpha=settings.alpha_out is not None)
        if settings.blur_faces:    # after compositing: detected on the input, hidden in the output
            stages.append(stack.enter_context(contextlib.closing(FaceBlur(settings.blur_style, settings.face_model))))
        pipeline = Pipeline(source, stages, sink, policy="offline", capacity=settings.queue_size)
        with _progress(source.frame_count, quiet) as on_frame, cancel_on_signals(pipeline):
            stats = pipeline.run(on_frame)
    return CutoutResult(output=output, frames=stats.written, seconds=stats.elapsed,
                        model=matter.describe(), interrupted=stats.cancelled, damaged=getattr(source, "damaged", 0),
                        busy_ms={k: 1000 * v / max(stats.written, 1) for k, v in stats.busy.items()})


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
