"""What a job's settings ask of memory, checked against what the machine has before any frame moves.

Counted: the frames the offline queues may hold at full size (image, alpha, output), the batches at the
model's size in the queues before the upsampling (shrunk image, alpha), and frames a stage holds back (the
face blur's look-back). The queues are the job's planned ones: one before each stage and one before the sink.
Not counted: the model's own working memory,
which depends on the model. A preset or flags asking for more than `SHARE` of the memory available now are
refused with the figures, instead of swapping the machine to a halt where Ctrl-C takes minutes to get through.
"""
from __future__ import annotations

import os

from model.errors import P3MError

SHARE = 1.0                  # of the memory available now that the frames in flight may take
FULL_FRAME_BYTES = 8         # per pixel, on average over a frame's way: RGB image, then float32 alpha, output
MODEL_FRAME_BYTES = 3 + 4    # per pixel at the model's size: the shrunk image and its alpha


def available_bytes() -> int | None:
    """Memory available to a new allocation now (Linux: MemAvailable), else the physical memory; None if unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def frames_in_flight_bytes(width: int, height: int, *, infer_size: int, batch: int, queue_size: int,
                           queues: int, model_queues: int, held: int = 0) -> int:
    """Bytes the offline pipeline may hold in frames: each of its `queues` full (at least two batches each, as
    stream/pipeline/runner.py sizes them) at full size, `held` frames more, and the frames at the model's size
    in the first `model_queues`."""
    per_queue = max(queue_size, 2 * batch)
    scale = infer_size / max(width, height, 1)
    model_pixels = infer_size * max(1, round(min(width, height) * scale))
    return ((queues * per_queue + batch + held) * width * height * FULL_FRAME_BYTES
            + (model_queues * per_queue + batch) * model_pixels * MODEL_FRAME_BYTES)


def queue_counts(stage_names: list[str]) -> tuple[int, int]:
    """(queues, of them those before the upsampling) of a pipeline whose stages have these names."""
    before = stage_names.index("upsampling") + 1 if "upsampling" in stage_names else 1
    return len(stage_names) + 1, before


def check_memory(width: int, height: int, *, infer_size: int, batch: int, queue_size: int, stage_names: list[str],
                 held: int = 0, available: int | None = None) -> None:
    """P3MError naming the settings when the frames in flight would take more than SHARE of `available`
    (default: what the machine has now). Live queues hold 1-2 frames: only offline jobs need it."""
    available = available_bytes() if available is None else available
    if not available:
        return
    queues, model_queues = queue_counts(stage_names)
    need = frames_in_flight_bytes(width, height, infer_size=infer_size, batch=batch, queue_size=queue_size,
                                  queues=queues, model_queues=model_queues, held=held)
    if need > SHARE * available:
        raise P3MError(
            f"batch {batch}, queue_size {queue_size} and infer_size {infer_size} on {width}x{height} frames would "
            f"hold about {need / 2**30:.1f} GiB of frames, and this machine has {available / 2**30:.1f} GiB "
            "available", "lower --batch, queue_size or --infer-size")
