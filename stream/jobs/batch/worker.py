"""One video of a batch, in a worker process (local pool or Ray task): the offline cut-out job with this
process's model, loaded on its first video and kept for the next ones."""
from __future__ import annotations

import atexit
import os
import socket
import time
from dataclasses import replace

from model.errors import P3MError
from model.matters.base import Matter
from model.matters.registry import make_matter
from stream.jobs.batch.inputs import Video
from stream.jobs.batch.report import VideoResult
from stream.jobs.config import CutoutConfig
from stream.jobs.offline import run_cutout
from stream.pipeline.runner import Aborted

_MATTERS: dict[tuple[str, str | None, str, str], Matter] = {}    # this process's models, by their settings


class ModelError(P3MError):
    """The model cannot be loaded: every video would fail alike, so the batch stops with this error."""


def cut_one(video: Video, settings: CutoutConfig) -> VideoResult:
    """Cut `video` out; every failure of the video is a result (status failed, its one-line reason), a stop
    is one too (cancelled, no output left). Raises ModelError when the model does not load."""
    matter = model_for(settings)
    base = dict(input=video.input, output=video.output, model=matter.describe(), device=str(matter.device),
                host=socket.gethostname())
    started = time.perf_counter()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(video.output)), exist_ok=True)
        # A stop removes the partial output (keep_interrupted=False): a kept one would look finished to the
        # next run, which skips finished outputs. The batch has decided which existing outputs to replace.
        result = run_cutout(video.input, video.output, replace(settings, alpha_out=video.alpha_out), quiet=True,
                            matter=matter, keep_interrupted=False, overwrite=True)
    except (Aborted, KeyboardInterrupt):    # KeyboardInterrupt: a stop before the job's own handler was in place
        return VideoResult(status="cancelled", seconds=time.perf_counter() - started, **base)
    except P3MError as e:
        return VideoResult(status="failed", seconds=time.perf_counter() - started, error=_one_line(e.message), **base)
    except Exception as e:                  # a bug or a library's error on this video: the others go on
        return VideoResult(status="failed", seconds=time.perf_counter() - started,
                           error=_one_line(f"{type(e).__name__}: {e}"), **base)
    if result.interrupted:
        return VideoResult(status="cancelled", seconds=result.seconds, **base)
    if result.frames == 0:
        return VideoResult(status="failed", seconds=result.seconds, error="no frames could be decoded", **base)
    return VideoResult(status="done", frames=result.frames, seconds=result.seconds, **{**base, "model": result.model})


def model_for(settings: CutoutConfig) -> Matter:
    """This process's model for `settings`, loaded once (ModelError when it cannot be)."""
    key = (settings.model, settings.weights, settings.device, settings.precision)
    if key not in _MATTERS:
        if not _MATTERS:
            atexit.register(close_models)    # before the interpreter tears down what native models need to close
        try:
            _MATTERS[key] = make_matter(settings.model, weights=settings.weights, device=settings.device,
                                        precision=settings.precision)
        except P3MError as e:
            raise ModelError(e.message, e.hint) from None
    return _MATTERS[key]


def close_models() -> None:
    """Close this process's models."""
    while _MATTERS:
        _MATTERS.popitem()[1].close()


def _one_line(text: str) -> str:
    return " ".join(text.split())
