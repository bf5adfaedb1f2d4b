"""The batch job: find the videos, skip the finished ones, cut the rest on an engine (a local process pool
or Ray tasks), report each one. One bad video never stops the others; Ctrl-C stops them all and keeps the
videos already finished."""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.errors import P3MError
from stream.jobs.batch.inputs import DEFAULT_NAME, Video, find_videos
from stream.jobs.batch.local_pool import LocalPool, check_gpus, default_workers, local_gpus
from stream.jobs.batch.progress import BatchProgress
from stream.jobs.batch.ray_tasks import RayTasks
from stream.jobs.batch.report import BatchReport, VideoResult, check_report_path
from stream.jobs.config import CutoutConfig, load_config
from stream.sinks.encoding import video_format

log = logging.getLogger(__name__)
ENGINES = ("local", "ray")
DEFAULT_CPUS_PER_VIDEO = 2       # a job's decode, model, upsampling and encode threads keep about two cores busy
POLL_S = 0.5                     # how often the batch looks up from waiting (Ctrl-C gets through at once anyway)


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs, beside the cut-out settings every video gets."""

    engine: str = "local"                 # local (a process pool here) | ray
    workers: int | None = None            # local: processes (default: what this machine runs side by side)
    ray_address: str | None = None        # ray: the cluster (default RAY_ADDRESS, else a local Ray)
    cpus_per_video: float | None = None   # CPUs a video takes (default 2)
    gpus_per_video: float | None = None   # GPUs (or a fraction) a video takes
    overwrite: bool = False               # cut videos whose outputs exist again
    name: str = DEFAULT_NAME              # output name template: {stem}, {ext}, {parent}
    report: str | None = None             # also write a .json or .csv report here

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise P3MError(f"unknown engine {self.engine!r}", f"use one of: {', '.join(ENGINES)}")
        if self.workers is not None and self.workers < 1:
            raise P3MError(f"--workers {self.workers} is not a positive number", "use e.g. --workers 2")
        if self.cpus_per_video is not None and self.cpus_per_video <= 0:
            raise P3MError(f"--cpus-per-video {self.cpus_per_video:g} is not positive", "use e.g. 1 or 2")
        if self.gpus_per_video is not None and self.gpus_per_video < 0:
            raise P3MError(f"--gpus-per-video {self.gpus_per_video:g} is negative", "use e.g. 1 or 0.5")
        if self.engine == "local" and self.ray_address:
            raise P3MError("--ray-address is for the Ray engine", "add --engine ray")


def batch(inputs: str | Path | Sequence[str | Path], output_dir: str | Path, *, config: str | Path | None = None,
          engine: str = "local", workers: int | None = None, ray_address: str | None = None,
          cpus_per_video: float | None = None, gpus_per_video: float | None = None, overwrite: bool = False,
          name: str = DEFAULT_NAME, report: str | Path | None = None, quiet: bool = False,
          **options: Any) -> BatchReport:
    """Cut the person out of every video `inputs` name (files, folders, globs, "@list.txt") into `output_dir`,
    mirroring the input tree; `options` are CutoutConfig fields for every video (`alpha_out` a name template
    like `name`). Returns the report (`exit_code`: 0, 1 when a video failed, 130 after Ctrl-C). Raises
    P3MError on user mistakes (no inputs, bad options, a model that does not load)."""
    inputs = [inputs] if isinstance(inputs, (str, Path)) else inputs
    settings = load_config(config, **options)
    how = BatchOptions(engine=engine, workers=workers, ray_address=ray_address, cpus_per_video=cpus_per_video,
                       gpus_per_video=gpus_per_video, overwrite=overwrite, name=name,
                       report=str(report) if report is not None else None)
    return run_batch([str(i) for i in inputs], str(output_dir), settings, how, quiet=quiet)


def run_batch(inputs: list[str], output_dir: str, settings: CutoutConfig, how: BatchOptions, *,
              quiet: bool = False) -> BatchReport:
    """`batch` with its settings loaded: every check first, then the videos not yet finished on the engine."""
    videos = find_videos(inputs, output_dir, name=how.name, alpha_name=settings.alpha_out)
    _check_formats(videos, settings)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    if how.report is not None:               # after the output folder is made: the report may go there
        check_report_path(how.report)
    skipped = {v for v in videos if not how.overwrite and v.finished()}
    todo = [v for v in videos if v not in skipped]
    results = {v.input: VideoResult(v.input, v.output, "skipped") for v in skipped}
    started = time.perf_counter()
    engine_name, workers, interrupted = how.engine, 0, False
    if todo:                                  # else no pool to start, no cluster to join
        with _engine(settings, how) as engine:
            engine_name, workers = engine.engine, engine.workers
            log.info("%d videos to cut (%d already done) on %d %s worker%s", len(todo), len(skipped), workers,
                     engine_name, "s" if workers != 1 else "")
            interrupted = _cut(engine, todo, len(skipped), results, quiet)
    ordered = [results.get(v.input) or VideoResult(v.input, v.output, "cancelled") for v in videos]
    report = BatchReport(ordered, time.perf_counter() - started, engine_name, workers, interrupted)
    if how.report is not None:
        report.write(how.report)
    return report


def _cut(engine: LocalPool | RayTasks, todo: list[Video], skipped: int, results: dict[str, VideoResult],
         quiet: bool) -> bool:
    """Run `todo` on `engine`, filling `results` as videos finish; True when Ctrl-C stopped it."""
    progress = BatchProgress(len(todo), skipped, quiet=quiet)
    try:
        engine.submit(todo)
        while engine.pending:
            for result in engine.wait(POLL_S):
                results[result.input] = result
                progress.add(result)
    except KeyboardInterrupt:
        log.warning("interrupted: stopping the videos in progress (their partial outputs are removed); "
                    "the finished ones are kept")
        for result in engine.cancel():
            results[result.input] = result
        return True
    except P3MError:                # the model does not load: the other workers' videos would fail alike
        engine.cancel()
        raise
    finally:
        progress.close()
    return False


def _engine(settings: CutoutConfig, how: BatchOptions) -> LocalPool | RayTasks:
    cpus = how.cpus_per_video or DEFAULT_CPUS_PER_VIDEO
    if how.engine == "ray":
        if how.workers is not None:
            raise P3MError("--workers is for the local engine", "with Ray, --cpus-per-video / --gpus-per-video "
                           "decide how many videos run at once")
        return RayTasks(settings, how.ray_address, cpus, how.gpus_per_video or 0.0)
    gpus = local_gpus(settings)
    check_gpus(gpus, how.gpus_per_video)
    workers = how.workers or default_workers(gpus, how.gpus_per_video, int(cpus))
    return LocalPool(settings, workers, gpus)


def _check_formats(videos: list[Video], settings: CutoutConfig) -> None:
    """Every output's extension suits what it holds, before any work (P3MError naming it)."""
    kind = "transparent" if settings.background == "transparent" else "composite"
    for ext in sorted({Path(v.output).suffix.lower() for v in videos}):
        video_format(kind, f"out{ext}")
    for ext in sorted({Path(v.alpha_out).suffix.lower() for v in videos if v.alpha_out}):
        video_format("matte", f"out{ext}")
