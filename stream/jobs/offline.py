"""The offline job: a video (or image sequence) in, a composited or transparent video out."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from stream import hwcodecs
from stream.jobs.assembly import Assembly
from stream.jobs.config import CutoutConfig, load_config
from stream.pipeline.runner import Pipeline, Stats, cancel_on_signals
from stream.sinks.files import check_outputs, open_sinks
from stream.sources.files import open_source

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


def run_cutout(input: str, output: str, settings: CutoutConfig, *, quiet: bool = False,
               overlap_batches: bool = True) -> CutoutResult:
    """Build source → matting → smoothing → compositing → sink(s) and run it offline (nothing dropped).
    `overlap_batches`: on CUDA, a batch's host work overlaps the previous batch's GPU work (DeviceCutout)."""
    with contextlib.ExitStack() as stack:
        assembly = Assembly(stack, settings)       # the background is checked before anything opens
        hardware = settings.hw_codecs != "off"      # NVENC where it works, else CPU (logged)
        # NVDEC only when asked: through PyAV its frames come back to host memory and convert there, slower
        # than decoding on the CPU threads (bench/RESULTS.md).
        source = stack.enter_context(open_source(input, hw_decode=settings.hw_codecs == "all"))
        transparent = assembly.compositor.transparent
        formats = check_outputs(output, source, transparent=transparent, alpha_out=settings.alpha_out)
        if hardware:          # NVENC's probe (slow where it fails) runs while the model loads
            for fmt in formats:
                hwcodecs.prefetch_encoder(fmt.codec, source.width, source.height, fmt.pix_fmt)
        assembly.load(batched=True)                # before the sinks: a bad infer_size leaves no output
        sink = stack.enter_context(open_sinks(output, source, transparent=transparent,
                                              alpha_out=settings.alpha_out, audio=settings.audio, crf=settings.crf,
                                              preset=settings.preset, hw_codecs=hardware))
        log.info("video: %s", hwcodecs.describe(source, sink))
        # CUDA: one stage, the tensors stay on the device; the alpha comes back only for a matte output.
        stages = [*assembly.stages(keep_alpha=settings.alpha_out is not None, overlap_batches=overlap_batches),
                  *assembly.face_blur()]
        pipeline = Pipeline(source, stages, sink, policy="offline", capacity=settings.queue_size)
        with _progress(source.frame_count, quiet) as on_frame, cancel_on_signals(pipeline):
            stats = pipeline.run(on_frame)
    return CutoutResult(output=output, frames=stats.written, seconds=stats.elapsed,
                        model=assembly.matter.describe(), interrupted=stats.cancelled,
                        damaged=getattr(source, "damaged", 0),
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
