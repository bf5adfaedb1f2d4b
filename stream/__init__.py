"""The video pipeline: sources, stages, sinks, the offline cut-out job, batches of videos and the `p3m` command."""
from __future__ import annotations

from typing import Any

__all__ = ["batch", "cutout"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import stream.frames` does not load torch and MediaPipe.
    if name == "cutout":
        from stream.jobs.offline import cutout

        return cutout
    if name == "batch":
        from stream.jobs.batch.run import batch

        return batch
    raise AttributeError(f"module 'stream' has no attribute {name!r}")
